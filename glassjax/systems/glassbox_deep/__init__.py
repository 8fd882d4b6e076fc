"""The deep glass-box (system ``glassbox_deep``): stacked, exactly D4-equivariant analytic layers.

  config.py     DeepGlassBoxConfig: every choice, validated and resolved from the image size
  lifted.py     the lifted domain: group actions on maps (N, |G|, h, w, C), lifting and group
                convolution with a filter expanded over the group, exact area pooling
  criteria.py   filters from the symmetrised statistics of lifted patches: pca, class_pca, fisher
  model.py      DeepGlassBoxParams and the jittable forward pass, layer by layer
  fit.py        the fit: one pass per layer for its filters, then the top (no back-propagation)
  modelfile.py  .npz save / load
  system.py     the registered system
"""
