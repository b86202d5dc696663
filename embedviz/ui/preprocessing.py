"""The Preprocessing panel: what the model is fed, shown and editable."""

from __future__ import annotations

import streamlit as st

from embedviz.extract.models import LoadedModel
from embedviz.extract.preprocessing import INTERPOLATIONS, RESIZE_POLICIES, parse_values
from embedviz.ui.choices import model_spec, set_preprocessing
from embedviz.ui.widgets import guard

__all__ = ["preprocessing_panel"]


def preprocessing_panel(model: LoadedModel) -> None:
    """Inputs seeded from the current preprocessing; applied only when they are valid."""
    pre = model.preprocessing
    spec = model_spec()
    fitted = bool(spec.preprocessing_from)  # raw pixels fed as the images are: not the user's change
    changed = bool(spec.preprocessing) and not fitted
    note = " (changed)" if changed else " (fitted to the images)" if fitted else ""
    with st.expander(f"Preprocessing: {pre.describe()}{note}", expanded=changed):
        left, mid, right = st.columns(3)
        size = left.number_input("Input size (pixels)", 4, 2048, pre.size)
        resize = mid.selectbox("Resize", RESIZE_POLICIES, index=RESIZE_POLICIES.index(pre.resize),
                               help="crop: shorter side to the size below, then the centre (ImageNet evaluation); "
                                    "squash: the whole image to a square")
        channels = right.selectbox("Channels", [3, 1], index=0 if pre.channels == 3 else 1,
                                   format_func=lambda c: "RGB" if c == 3 else "grey")
        left, mid, right = st.columns(3)
        resize_to = left.number_input("Shorter side before the crop (0: size·256/224)", 0, 4096, pre.resize_to)
        interpolation = mid.selectbox("Interpolation", INTERPOLATIONS, index=INTERPOLATIONS.index(pre.interpolation))
        left, right = st.columns(2)
        mean = left.text_input("Mean per channel", ", ".join(f"{m:g}" for m in pre.mean))
        std = right.text_input("Std per channel", ", ".join(f"{s:g}" for s in pre.std))
        apply, reset = st.columns([1, 3])
        if apply.button("Apply"):
            with guard(stop=False):  # a bad value is said here; the current preprocessing stays
                set_preprocessing({"size": int(size), "channels": int(channels), "resize": resize,
                                   "resize_to": int(resize_to), "interpolation": interpolation,
                                   "mean": parse_values(mean, "Mean"), "std": parse_values(std, "Std")})
                st.rerun()
        if changed and reset.button("Back to the model's default"):
            set_preprocessing(None)
            st.rerun()
