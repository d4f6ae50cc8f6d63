"""Training: one loop for supervised, adversarial and staged training, with checkpoints."""
