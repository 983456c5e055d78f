-- wrk_report.lua - makes wrk print one machine-readable summary line for
-- bench.sh (latencies in microseconds, straight from wrk's histogram).
done = function(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        "GVBENCH requests=%.0f duration_us=%.0f p50_us=%.0f p99_us=%.0f " ..
        "connect=%.0f read=%.0f write=%.0f status=%.0f timeout=%.0f\n",
        summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
        e.connect, e.read, e.write, e.status, e.timeout))
end
