"""Latency models: the simulator's ground truth (roofline or calibrated profile) and the
policies' coarser estimators."""
