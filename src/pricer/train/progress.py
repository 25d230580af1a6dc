"""The run's clock, as a TrainerCallback: real (non-padding) tokens per second for the run card,
and the time budget (`max_minutes`: stop cleanly, the run is saved). It draws nothing; a
progress bar is the caller's callback (the CLI's is in pricer.cli.train)."""

import time

from transformers import TrainerCallback


class RunClock(TrainerCallback):
    def __init__(self, max_minutes: float | None = None):
        self.max_minutes = max_minutes
        self.stopped_early = False
        self.tokens_per_s = None
        self.start = self.tokens0 = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.start, self.tokens0 = time.perf_counter(), state.num_input_tokens_seen

    def on_step_end(self, args, state, control, **kwargs):
        elapsed = time.perf_counter() - self.start
        if elapsed > 0:
            self.tokens_per_s = (state.num_input_tokens_seen - self.tokens0) / elapsed
        if self.max_minutes and elapsed > self.max_minutes * 60 and state.global_step < state.max_steps:
            control.should_training_stop = self.stopped_early = True
