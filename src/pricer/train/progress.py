"""A Rich progress bar for the HF Trainer: step, loss and real (non-padding) tokens per second."""

import time

from transformers import TrainerCallback


class RichProgress(TrainerCallback):
    """Shows one bar on the main process; also remembers the run's throughput for the run card."""

    def __init__(self, show: bool = True, max_minutes: float | None = None):
        self.show = show
        self.max_minutes = max_minutes  # a time budget: stop cleanly (the run is saved) when spent
        self.stopped_early = False
        self.progress = None
        self.loss = None
        self.tokens_per_s = None
        self.start = self.tokens0 = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.start, self.tokens0 = time.perf_counter(), state.num_input_tokens_seen
        self.step0 = state.global_step
        if self.show and state.is_world_process_zero:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)

            self.progress = Progress(
                TextColumn("[bold blue]train"), BarColumn(), MofNCompleteColumn(),
                TextColumn("loss [yellow]{task.fields[loss]}"),
                TextColumn("[green]{task.fields[tps]} tok/s"),
                TimeElapsedColumn(), TimeRemainingColumn())
            self.task = self.progress.add_task("train", total=state.max_steps,
                                               completed=state.global_step, loss="-", tps="-")
            self.progress.start()

    def on_step_end(self, args, state, control, **kwargs):
        elapsed = time.perf_counter() - self.start
        if elapsed > 0:
            self.tokens_per_s = (state.num_input_tokens_seen - self.tokens0) / elapsed
        if self.max_minutes and elapsed > self.max_minutes * 60 and state.global_step < state.max_steps:
            control.should_training_stop = self.stopped_early = True
        if self.progress is not None:
            self.progress.update(self.task, completed=state.global_step,
                                 tps=f"{self.tokens_per_s:.0f}")

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.loss = logs["loss"]
            if self.progress is not None:
                self.progress.update(self.task, loss=f"{self.loss:.4f}")

    def on_train_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
