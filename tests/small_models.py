"""Narrow constructor arguments per built-in model, so tests train and check them in seconds."""

SMALL = {
    "mobileascnet": {"stem_channels": 8, "channels": [8, 16, 16], "gru_hidden": 16},
    "mobileascnet-early": {"stem_channels": 8, "channels": [8, 16, 16], "gru_hidden": 16},
    "mobileascnet-gru": {"stem_channels": 8, "channels": [8, 16, 16], "gru_hidden": 16},
    "mobileascnet-cnn": {"stem_channels": 8, "channels": [8, 16, 16]},
    "mobileascnet-tiny": {},
    "se-trans": {"channels": [8, 16], "heads": 2, "feedforward": 16},
    "cp-mobile": {"base_channels": 8},
    "context-only": {},
    "timm:mobilenetv3_small_050": {},
    "timm:resnet10t": {},
}
