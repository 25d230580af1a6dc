"""Forward-pass and LoRA training-step time of the default model at each precision on this machine.

Run by hand:  .venv/bin/python benchmarks/bench_models_precision.py [--model default] [--train]
Prints one row per precision as it finishes: footprint, median forward time for a batch and, with
--train, median LoRA step time (fresh model, loaded with for_training=True); ratios are against
the first precision, measured in the same run.
"""

import argparse
import statistics
import time

import torch


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up (and, in 4-bit on AVX512-BF16 CPUs, the weight repacking)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    from peft import LoraConfig, get_peft_model

    from pricer.models.load import load_model

    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="default")
    parser.add_argument("--precisions", default="fp32,bf16,8bit,4bit")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train", action="store_true", help="also time a LoRA training step")
    args = parser.parse_args()
    torch.manual_seed(0)
    ids = torch.randint(100, 10000, (args.batch, args.tokens))
    rows = []
    for precision in args.precisions.split(","):
        model, _ = load_model(args.model, precision=precision, device="cpu")
        footprint = model.get_memory_footprint()

        def forward():
            with torch.no_grad():
                model(ids)

        fwd = median_time(forward, args.repeats)
        del model
        train = float("nan")
        if args.train:
            trainee, _ = load_model(args.model, precision=precision, device="cpu", for_training=True)
            peft = get_peft_model(trainee, LoraConfig(r=8, lora_alpha=16, task_type="CAUSAL_LM",
                                                      target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
            optimizer = torch.optim.AdamW([p for p in peft.parameters() if p.requires_grad], lr=1e-4)

            def step():
                peft(input_ids=ids, labels=ids).loss.backward()
                optimizer.step()
                optimizer.zero_grad()

            train = median_time(step, args.repeats)
            del peft, trainee
        if not rows:
            print(f"batch {args.batch} x {args.tokens} tokens, torch threads {torch.get_num_threads()}")
            print(f"{'precision':<10}{'footprint MB':>14}{'forward s':>11}{'ratio':>8}{'LoRA step s':>13}{'ratio':>8}")
        rows.append((precision, footprint, fwd, train))
        print(f"{precision:<10}{footprint / 1e6:>14.1f}{fwd:>11.3f}{fwd / rows[0][2]:>7.2f}x"
              f"{train:>13.3f}{train / rows[0][3]:>7.2f}x", flush=True)


if __name__ == "__main__":
    main()
