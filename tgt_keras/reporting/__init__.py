"""Reporting: figures (`tgt_keras.reporting.plots`) that experiments, tuning and apps write."""
