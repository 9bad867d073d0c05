"""The built-in semi-supervised methods (``--semi``): ``none``, ``pseudo-label`` and ``mean-teacher``.

Their training code is ``ascbench.semi`` (shared with anyone writing a method: ``select_pseudo_labels``,
``recording_vote``, the ``MeanTeacher`` hook); this module registers them like any other plugin.
"""

from ascbench import hookimpl
from ascbench.semi import MeanTeacherOptions, PseudoLabelOptions, mean_teacher, pseudo_label, supervised
from ascbench.specs import SemiSpec


@hookimpl
def ascbench_semi_methods():
    return [
        SemiSpec("none", supervised, "labeled clips only"),
        SemiSpec("pseudo-label", pseudo_label, "rounds of confident, class-balanced pseudo-labels on the unlabeled "
                 "clips (the challenge recipe)", options_class=PseudoLabelOptions),
        SemiSpec("mean-teacher", mean_teacher, "consistency with an EMA teacher on the unlabeled clips",
                 options_class=MeanTeacherOptions),
    ]
