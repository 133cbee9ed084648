"""echod benchmarks: wrk workloads, the suite driver, its report and the profiler."""
