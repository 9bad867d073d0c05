"""The standard protocols: official, unseen-city, unseen-time."""

from ascbench import hookimpl
from ascbench.protocols import official, unseen_city, unseen_time
from ascbench.specs import ProtocolSpec


@hookimpl
def ascbench_protocols() -> list[ProtocolSpec]:
    return [
        ProtocolSpec("official", official, "the dataset's own train/test split (by recording)"),
        ProtocolSpec("unseen-city", unseen_city, "test cities never seen in training"),
        ProtocolSpec("unseen-time", unseen_time, "test periods never seen in training (evening+night, or latest dates)"),
    ]
