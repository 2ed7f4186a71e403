// The daemon's dashboard: one self-contained HTML page (no external assets) that reads
// /status and /history and draws, in inline SVG, the duration and size of every job's runs
// over time and each objective's RPO exposure against the objective.
#pragma once

#include <string_view>

namespace lb::ops {

std::string_view DashboardHtml();

}  // namespace lb::ops
