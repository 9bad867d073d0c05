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
                    "clips (the challenge recipe)", options_class=ap.PseudoLabelOptions,
                    shortcuts={"--pl-rounds": "rounds", "--pl-threshold": "threshold",
                               "--pl-unbalanced": "class_balanced=false", "--pl-no-vote": "group_vote=false"},
                    # its options were core config fields once: stored records and files still name them so
                    renamed={"pl_rounds": ("rounds", 2), "pl_threshold": ("threshold", 0.5),
                             "pl_class_balanced": ("class_balanced", True), "pl_group_vote": ("group_vote", True),
                             "pl_restart": ("restart", True)}),
        ap.SemiSpec("mean-teacher", ap.mean_teacher, "consistency with an EMA teacher on the unlabeled clips",
                    # its EMA teacher follows one process's weights: data-parallel ranks would each keep their own
                    options_class=ap.MeanTeacherOptions, data_parallel=False,
                    shortcuts={"--mt-ema": "ema", "--mt-weight": "weight"},
                    renamed={"mt_ema": ("ema", 0.99), "mt_weight": ("weight", 10.0)}),
    ]
