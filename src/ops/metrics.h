// The Prometheus text exposition (format 0.0.4) of a status report: served at /metrics.
// Metric names are listed in docs/user-guide.md, "Metrics".
#pragma once

#include <string>
#include <string_view>

#include "ops/status.h"

namespace lb::ops {

// Every metric with its HELP and TYPE lines; label values escaped.
std::string RenderMetrics(const StatusReport& r);

// A label value with backslash, double quote and newline escaped.
std::string EscapeLabelValue(std::string_view v);

}  // namespace lb::ops
