"""The mechanisms every system shares: groups, streaming statistics and their solvers, the
device mesh, batching, atomic files and progress. Nothing here knows a system or a data set.

  arrays       the one check of images, labels and int/float options; row padding
  groups       group actions on NHWC images (D4 and subgroups, C_n, translations), orbits
  reduction    streaming moments / class scatter (init, update, merge) -> PCA (exact or
               randomized), LDA; one projection for both
  classifiers  ridge and LDA from class statistics; logistic, SVM, MLP with optax; the one
               ridge solve (``ridge_predict`` for any targets)
  parallel     the 1-D batch mesh: sharding, padding, replication
  batching     a function over an array in fixed-size batches (host loop or ``lax.map``)
  files        atomic writes
  modelfile    .npz model files: arrays plus a JSON meta entry naming the system
  progress     progress bars with counts and rates
"""
