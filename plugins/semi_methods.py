"""The built-in semi-supervised methods (``--semi``): ``none``, ``pseudo-label`` and ``mean-teacher``.

Their training code is ``ascbench.semi`` (shared with anyone writing a method: ``select_pseudo_labels``,
``recording_vote``, the ``MeanTeacher`` hook); this module registers them like any other plugin.
"""

import ascbench.plugin as ap


@ap.hookimpl
def ascbench_semi_methods():
    return [
        ap.SemiSpec("none", ap.supervised, "labeled clips only"),
        ap.SemiSpec("pseudo-label", ap.pseudo_label, "rounds of confident, class-balanced pseudo-labels on the unlabeled "
                    "clips (the challenge recipe)", options_class=ap.PseudoLabelOptions),
        ap.SemiSpec("mean-teacher", ap.mean_teacher, "consistency with an EMA teacher on the unlabeled clips",
                    # its EMA teacher follows one process's weights: data-parallel ranks would each keep their own
                    options_class=ap.MeanTeacherOptions, data_parallel=False),
    ]
