"""The kinds of Facemap signals, defined once (a module without imports, so the command line's help stays fast)."""

__all__ = ["SIGNALS"]

# What ``convert --signals`` and :func:`facemap_nwb.nwb.facemap.add_facemap_results` can write.
SIGNALS = ("motion_energy", "motion_svd", "movie_svd", "summary", "pupil", "blink", "running")
