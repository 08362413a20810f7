"""Column indices of the arrays that describe a network to the kernels (see nncli.network).

- layout: int64 (L, LAYOUT_COLS) per layer: sizes, offsets into theta/running (-1 if absent),
  activation code, batch-norm position, number of learned activation parameters, maxout pieces.
- layer_hp: float64 (L, LAYER_HP_COLS) per layer: activation parameters, dropout rate, batch
  norm's momentum and eps, and the activation's family and maximal derivative (for reports).
- train_hp: float64 (TRAIN_HP_COLS,) settings of a training run that are not per layer.
"""

N_IN, N_OUT, W_OFF, B_OFF, ACT, BN, G_OFF, R_OFF, A_OFF, N_A, PIECES = range(11)
LAYOUT_COLS = 11
P0, P1, DROPOUT, BN_MOMENTUM, BN_EPS, FAMILY, MAX_DERIV = range(7)
LAYER_HP_COLS = 7
BN_NONE, BN_BEFORE, BN_AFTER = 0, 1, 2
FAMILY_OTHER, FAMILY_RELU, FAMILY_SATURATING = 0, 1, 2
INPUT_DROPOUT, NOISE, MIXUP, L1, L2, CLIP_NORM, CLIP_VALUE = range(7)
TRAIN_HP_COLS = 7
