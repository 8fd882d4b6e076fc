"""The input-signal probe (Palacio et al., "What do Deep Networks Like to See?", CVPR 2018): a SegNet
autoencoder pretrained to reconstruct, its decoder then fine-tuned on a frozen classifier's
cross-entropy; the reconstructions show which part of the input signal that classifier uses.

    >>> probed, skipped, _ = input_signal.prepare(["glassbox", "lenet5", "logistic"], dataset)
    >>> result, samples = input_signal.run(dataset, probed, input_signal.AutoencoderConfig())
    >>> result["matrix"]["lenet5"]["glassbox"]   # glass-box accuracy on LeNet-tuned reconstructions, relative
"""
from glassjax.probes.input_signal.autoencoder import (
    AutoencoderConfig,
    Code,
    Decoder,
    Encoder,
)
from glassjax.probes.input_signal.classifiers import (
    ANCHOR,
    Probed,
    fit_logistic,
    from_system,
    gradient_problem,
)
from glassjax.probes.input_signal.figures import matrix_heatmap, reconstruction_grid
from glassjax.probes.input_signal.matrix import cross_matrix, order, rank_correlation
from glassjax.probes.input_signal.mutual_information import (
    derangement,
    intra_inter,
    nmi,
)
from glassjax.probes.input_signal.orientation import orientation_kept
from glassjax.probes.input_signal.probe import UNTUNED, accuracy, prepare, run
from glassjax.probes.input_signal.section import html_section
from glassjax.probes.input_signal.training import (
    Autoencoder,
    encode,
    finetune,
    init,
    pretrain,
    reconstruct,
)
from glassjax.probes.input_signal.unpool import max_pool_with_argmax, max_unpool

__all__ = [
    "AutoencoderConfig", "Code", "Encoder", "Decoder", "Autoencoder", "init", "pretrain", "finetune", "encode",
    "reconstruct", "max_pool_with_argmax", "max_unpool", "ANCHOR", "Probed", "from_system", "fit_logistic",
    "gradient_problem", "prepare", "run", "accuracy", "UNTUNED", "cross_matrix", "order", "rank_correlation",
    "nmi", "intra_inter", "derangement", "orientation_kept", "reconstruction_grid", "matrix_heatmap", "html_section",
]
