#!/usr/bin/env python3
"""The daemon's dashboard in headless Chromium: a daemon runs a small files plan (`@every`
schedules, a failing job too) until the history has runs; then the page at / is loaded,
its DOM after the scripts ran is checked for the plots (inline SVG with data points) and
the browser's log for uncaught errors and console errors. With --screenshot FILE it also
saves a picture of the page (docs/dashboard.png is made this way).

LIFEBOAT: the binary to test. Exit 77 (skipped) when chromium is not installed.
Ends with "N passed, N failed".
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
LIFEBOAT = os.environ.get("LIFEBOAT") or os.path.join(HERE, "..", "..", "build", "lifeboat")
results = []


def check(name, cond, detail=""):
    results.append((name, bool(cond)))
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else f": {detail}"), flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def browser(args, url, timeout=120):
    """Runs headless Chromium on `url`; returns (stdout, stderr)."""
    home = tempfile.mkdtemp(prefix="lifeboat-chromium-")
    try:
        cmd = [chromium(), "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
               "--disable-dev-shm-usage", "--disable-extensions", "--user-data-dir=" + home,
               "--enable-logging=stderr", "--v=0", "--virtual-time-budget=8000",
               "--window-size=1280,1500"] + args + [url]
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=timeout, env=dict(os.environ, HOME=home))
        return p.stdout, p.stderr
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main():
    screenshot = None
    if "--screenshot" in sys.argv:
        screenshot = os.path.abspath(sys.argv[sys.argv.index("--screenshot") + 1])
    if chromium() is None:
        print("skipped: chromium is not installed (scripts/install-deps.sh installs it)")
        return 77
    work = tempfile.mkdtemp(prefix="lifeboat-dashboard-")
    daemon = None
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIFEBOAT")}
        env.update({"LIFEBOAT_TEST_FAST_KDF": "1", "HOME": work})
        repo, pw, data = (os.path.join(work, n) for n in ("repo", "password", "data"))
        with open(pw, "w") as f:
            f.write("dashboard test\n")
        os.makedirs(data)
        subprocess.run([LIFEBOAT, "--repo", repo, "--password-file", pw, "init"], env=env,
                       check=True, stdout=subprocess.DEVNULL)
        port = free_port()
        plan = os.path.join(work, "plan.yaml")
        with open(plan, "w") as f:
            f.write(f"""version: 1
encryption: {{password_file: {pw}}}
repositories:
  local: {{url: {repo}}}
  missing: {{url: {work}/no-such-repo}}
sources:
  uploads: {{kind: files, paths: [{data}]}}
  reports: {{kind: files, paths: [{data}]}}
jobs:
  uploads: {{kind: files, source: uploads, schedule: "@every 2s", repositories: [local],
            retention: {{keep_last: 5}}}}
  reports: {{kind: files, source: reports, schedule: "@every 3s", repositories: [local]}}
  check-missing: {{kind: check, schedule: "@every 5s", repositories: [missing]}}
objectives:
  uploads: {{sources: [uploads], rpo: 30s}}
  reports: {{sources: [reports], rpo: 4s}}
daemon: {{listen: "127.0.0.1:{port}", history: {work}/history.db, retries: 0}}
""")
        log = open(os.path.join(work, "daemon.log"), "w")
        daemon = subprocess.Popen([LIFEBOAT, "daemon", "--plan", plan, "--observe-interval", "1"],
                                  env=env, stdout=log, stderr=log)
        # Growing data, so the size plot climbs.
        deadline = time.monotonic() + 60
        runs = []
        i = 0
        while time.monotonic() < deadline:
            with open(os.path.join(data, f"f{i}.bin"), "wb") as f:
                f.write(os.urandom(20000 * (i + 1)))
            i += 1
            time.sleep(1)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/history", timeout=5) as r:
                    runs = json.loads(r.read())
            except OSError:
                continue
            if sum(1 for r in runs if r["job"] == "uploads" and r["result"] == "ok") >= 8 and \
               any(r["job"] == "check-missing" for r in runs):
                break
        check("the daemon recorded runs", len(runs) >= 8, len(runs))

        url = f"http://127.0.0.1:{port}/"
        dom, log_text = browser(["--dump-dom"], url)
        plots = re.findall(r'<svg[^>]*class="plot"[^>]*data-points="(\d+)"', dom)
        check("the page shows plots", len(plots) >= 6, plots)
        check("the plots have data points", sum(1 for n in plots if int(n) >= 3) >= 4, plots)
        check("lines are drawn", dom.count("<polyline") >= 4, dom.count("<polyline"))
        check("objectives are shown with their state",
              'class="state OK"' in dom or 'class="state WARNING"' in dom or 'class="state VIOLATED"' in dom,
              dom[:2000])
        check("the failing job is listed under recent failures", "check-missing" in dom and "failed" in dom)
        errors = [ln for ln in log_text.splitlines()
                  if "Uncaught" in ln or re.search(r"CONSOLE\(\d+\).*(error|Error)", ln)
                  or ("ERROR:CONSOLE" in ln)]
        check("no script errors in the browser's log", errors == [], errors[:5])
        if screenshot:
            _, _ = browser([f"--screenshot={screenshot}"], url)
            check("screenshot written", os.path.exists(screenshot), screenshot)
        daemon.send_signal(signal.SIGTERM)
        check("the daemon stops cleanly", daemon.wait(timeout=60) == 0)
    finally:
        if daemon and daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        shutil.rmtree(work, ignore_errors=True)
    passed = sum(1 for _, ok in results if ok)
    print(f"{passed} passed, {len(results) - passed} failed")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
