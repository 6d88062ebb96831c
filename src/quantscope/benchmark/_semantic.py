"""Semantic (foreground / background) segmentation metrics and labelling of binary masks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..errors import InvalidInput

__all__ = ["SemanticScores", "label_mask", "score_semantic"]


@dataclass(frozen=True)
class SemanticScores:
    """Pixel counts of two binary foregrounds and the metrics built on them.

    Attributes
    ----------
    tp, fp, fn, tn : int
        Pixels foreground in both, only in the prediction, only in the truth, in neither.
    """

    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def dice(self) -> float:
        """Dice coefficient 2|A ∩ B| / (|A| + |B|) (Dice 1945, doi:10.2307/1932409); 1 when
        both foregrounds are empty."""
        den = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / den if den else 1.0

    @property
    def iou(self) -> float:
        """Jaccard index |A ∩ B| / |A ∪ B| (Jaccard 1912, doi:10.1111/j.1469-8137.1912.tb05611.x);
        1 when both foregrounds are empty."""
        den = self.tp + self.fp + self.fn
        return self.tp / den if den else 1.0

    @property
    def pixel_accuracy(self) -> float:
        """Fraction of pixels with the right foreground/background class."""
        n = self.tp + self.fp + self.fn + self.tn
        return (self.tp + self.tn) / n if n else 1.0


def _as_mask(mask: npt.ArrayLike, name: str) -> npt.NDArray[np.bool_]:
    arr = np.asarray(mask)
    if arr.dtype == bool:
        return arr
    if arr.dtype.kind not in "iu":
        raise InvalidInput(
            f"{name}: pixels are {arr.dtype}; a mask must be boolean or integer (0 = background)"
        )
    return arr != 0


def score_semantic(
    truth: npt.ArrayLike,
    pred: npt.ArrayLike,
    *,
    names: tuple[str, str] = ("truth", "prediction"),
) -> SemanticScores:
    """Compare binary foregrounds (any non-zero pixel of a label image is foreground).

    Parameters
    ----------
    truth, pred : array_like of bool or int
        Masks or label images of the same shape.
    names : (str, str)
        Names of the two images for error messages.

    Returns
    -------
    SemanticScores

    Examples
    --------
    >>> import numpy as np
    >>> s = score_semantic(np.array([1, 1, 0, 0]), np.array([0, 1, 1, 0]))
    >>> s.dice, s.iou
    (0.5, 0.3333333333333333)
    """
    t = _as_mask(truth, names[0])
    p = _as_mask(pred, names[1])
    if t.shape != p.shape:
        raise InvalidInput(
            f"{names[1]}: shape {p.shape} differs from {names[0]} shape {t.shape}; "
            "prediction and ground truth must have the same shape"
        )
    tp = int(np.count_nonzero(t & p))
    nt, np_ = int(np.count_nonzero(t)), int(np.count_nonzero(p))
    return SemanticScores(tp=tp, fp=np_ - tp, fn=nt - tp, tn=int(t.size) - nt - np_ + tp)


def label_mask(
    mask: npt.ArrayLike, connectivity: int = 1, *, name: str = "mask"
) -> npt.NDArray[np.int32]:
    """Instance labels from a binary mask: each connected component becomes one object.

    Parameters
    ----------
    mask : array_like of bool or int
        Binary mask (non-zero = foreground).
    connectivity : int
        Neighbourhood as in :func:`skimage.measure.label`: 1 = 4-connected in 2-D (6 in 3-D),
        ``ndim`` = 8-connected in 2-D (26 in 3-D). Touching objects merge into one: use real
        instance labels where objects touch.
    name : str
        Name for error messages.

    Returns
    -------
    ndarray of int32
        Labels 1..N, background 0.
    """
    from skimage.measure import label

    arr = _as_mask(mask, name)
    if not 1 <= connectivity <= arr.ndim:
        raise InvalidInput(
            f"{name}: connectivity {connectivity} is not in 1..{arr.ndim} for a {arr.ndim}-D mask"
        )
    return np.asarray(label(arr, connectivity=connectivity), dtype=np.int32)
