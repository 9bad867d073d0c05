"""Datasets: the standard clip table, audio I/O, time features and the embedded synthetic scenes."""
