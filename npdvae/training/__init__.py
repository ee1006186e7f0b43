"""Training a model: its configuration, Adam, the schedule, the loop, and the run folder it
writes (checkpoints, run files, the lock, model files)."""
