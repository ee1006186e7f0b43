"""The run folder: what a run keeps on disk and how it is opened, continued and read.

``runs`` opens a folder for training (new, continued or restarted, under its lock) and reads
trained models from it; ``checkpoint`` writes and verifies the HDF5 checkpoints; ``run_files``
writes every file atomically and holds the lock; ``identity`` and ``provenance`` say whose
and from which code each file is; ``model_file`` exports and reads the published models;
``evaluation_record`` the scores of a run; ``run_summary`` what ``npdvae runs`` lists.
"""
