"""Training a model: its configuration, the table of operations, one step, Adam and its
clipping, the schedule, and the loop over epochs with the state that continues it."""
