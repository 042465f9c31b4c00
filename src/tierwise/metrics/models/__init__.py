"""Customer-base models: who is still a customer, how much they will buy, and their value.

``rfm_summary`` turns orders into (frequency, recency, T, monetary_value) with Ibis; the
models are fitted with numpy/scipy on those few columns.
"""

from tierwise.errors import ModelError
from tierwise.metrics.models.bgnbd import BetaGeo, fit_bgnbd
from tierwise.metrics.models.gamma_gamma import GammaGamma, clv, fit_gamma_gamma
from tierwise.metrics.models.summary import rfm_summary, triples

__all__ = [
    "BetaGeo",
    "GammaGamma",
    "ModelError",
    "clv",
    "fit_bgnbd",
    "fit_gamma_gamma",
    "rfm_summary",
    "triples",
]
