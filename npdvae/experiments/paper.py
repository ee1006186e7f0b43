"""The numbers the paper reports, for comparison beside our own.

Tables 1 and 3: negative variational lower bounds on the MNIST test set
(nats, lower is better), mean and standard deviation over 10 runs.
Table 2: the bounds on the Frey Face test set. Its caption says "negative",
but its text ("all of the methods with denoising criterion surpassed the
performance of vanilla VAE") holds only if higher is better, so we read
its entries as the bound itself (higher is better).
The data-augmentation comparison is in the text of section 4.

Keys: (row label, noise level in percent) -> (mean, std).
"""

TABLE1 = {
    ("DVAE (K=1)", 1): {0: (96.14, 0.09), 5: (95.52, 0.12), 10: (96.12, 0.06), 15: (96.83, 0.17)},
    ("DVAE (K=1)", 2): {0: (95.90, 0.23), 5: (95.34, 0.17), 10: (95.65, 0.14), 15: (96.17, 0.17)},
    ("DVAE (K=5)", 1): {0: (95.20, 0.07), 5: (95.01, 0.04), 10: (95.55, 0.07), 15: (96.41, 0.11)},
    ("DVAE (K=5)", 2): {0: (95.01, 0.07), 5: (94.71, 0.13), 10: (94.90, 0.22), 15: (96.41, 0.11)},
    ("DIWAE (K=5)", 1): {0: (94.36, 0.07), 5: (93.67, 0.10), 10: (93.97, 0.07), 15: (94.35, 0.08)},
    ("DIWAE (K=5)", 2): {0: (94.31, 0.07), 5: (93.08, 0.08), 10: (93.35, 0.13), 15: (93.71, 0.07)},
}

TABLE2 = {
    ("DVAE (K=1)", 1): {0: (1304.79, 5.71), 2.5: (1313.74, 3.64), 5: (1314.48, 5.85), 7.5: (1293.07, 5.03)},
    ("DVAE (K=1)", 2): {0: (1317.53, 3.93), 2.5: (1322.40, 3.11), 5: (1319.60, 3.30), 7.5: (1306.07, 3.35)},
    ("DVAE (K=5)", 1): {0: (1306.45, 6.13), 2.5: (1320.39, 4.17), 5: (1313.14, 5.80), 7.5: (1298.40, 4.74)},
    ("DVAE (K=5)", 2): {0: (1317.51, 3.81), 2.5: (1324.13, 2.62), 5: (1320.99, 3.49), 7.5: (1317.56, 3.94)},
    ("DIWAE (K=5)", 1): {0: (1318.04, 2.83), 2.5: (1320.18, 3.43), 5: (1333.44, 2.74), 7.5: (1305.38, 2.97)},
    ("DIWAE (K=5)", 2): {0: (1320.03, 1.67), 2.5: (1334.77, 2.69), 5: (1323.97, 4.15), 7.5: (1309.30, 2.95)},
}

TABLE3 = {
    ("DVAE (GRU)", 1): {0: (96.07, 0.17), 5: (94.30, 0.09), 10: (94.32, 0.12), 15: (94.88, 0.11)},
    ("DIWAE (GRU)", 1): {0: (93.94, 0.06), 5: (93.13, 0.11), 10: (92.84, 0.07), 15: (93.03, 0.04)},
}

# Section 4, "Data augmentation v.s. data corruption": augmentation (inputs
# resampled from their intensities every iteration) against denoising.
AUGMENTATION = {
    ("VAE", 1): {"augmentation": (93.88, 0.08), "denoising": (94.32, 0.37)},
    ("IWAE (K=5)", 1): {"augmentation": (92.51, 0.07), "denoising": (93.83, 0.06)},
}

# Burda et al.'s schedule, which the reference code trains with: 3^0 + ... + 3^7 epochs.
PAPER_EPOCHS = 3280

# "For all our results, we ran 10-fold experiments" (section 4).
PAPER_SEEDS = 10
