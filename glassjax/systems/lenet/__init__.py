"""LeNet-5 trained by back-propagation (system ``lenet5``): the FF-CNN's reference, same shape.

  system   the Flax model, its optax training and the registered system
"""
