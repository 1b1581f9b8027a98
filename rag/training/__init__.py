"""Training a reader (`rag train`): mining passages, the loop, data parallelism, calibration."""
