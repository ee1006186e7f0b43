"""The paper's experiments: its reported numbers, the grids of section 4, the executor that
runs a grid's tasks (local processes or a Dask cluster), and the benchmark."""
