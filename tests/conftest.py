"""Test configuration: 8 emulated CPU devices and strict JAX promotion rules.

XLA_FLAGS must be set before JAX initialises its backend, so it is set at import.
"""
import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_numpy_dtype_promotion", "strict")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tfds_digits(tmp_path_factory):
    """A TFDS data set 'tiny_digits' built on disk without TensorFlow (array_record, uint8 Tensor
    features): the first 120 train and 20 test images of scikit-learn digits 0 and 1.

    Returns (data_dir, the same images as a glassjax Dataset, before uint8 quantisation).
    """
    import tensorflow_datasets as tfds

    from glassjax import data

    reference = data.load("digits", classes=["0", "1"])
    reference = reference._replace(x_train=reference.x_train[:120], y_train=reference.y_train[:120],
                                   x_test=reference.x_test[:20], y_test=reference.y_test[:20])

    class TinyDigits(tfds.core.GeneratorBasedBuilder):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            features = tfds.features.FeaturesDict({
                "image": tfds.features.Tensor(shape=(8, 8, 1), dtype=np.uint8),
                "label": tfds.features.ClassLabel(names=list(reference.class_names)),
            })
            return tfds.core.DatasetInfo(builder=self, features=features, disable_shuffling=True)

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples(reference.x_train, reference.y_train),
                    "test": self._generate_examples(reference.x_test, reference.y_test)}

        def _generate_examples(self, images, labels):
            for i, (image, label) in enumerate(zip(images, labels)):
                yield i, {"image": np.round(image * 255).astype(np.uint8), "label": int(label)}

    data_dir = tmp_path_factory.mktemp("tfds")
    TinyDigits(data_dir=str(data_dir), file_format="array_record").download_and_prepare()
    return str(data_dir), reference
