"""The data stage: product listings -> the reference's prompts, saved as a data set.

Public surface:
- `read`: the one reader of item files (`detect_format`, `chunks`, `rows`, lenient `read_texts`);
- `items`: `Item`, strict `read_items`, `fingerprint` (what training and evaluation read);
- `curate`: the reference's rules for one record (`Settings`, `REFERENCE`, `USER`, `Drop`);
- `pipeline`: `curate_source`, `make_dataset`, `build_dataset` (`pricer data`);
- `store`: save/load a data set, `price_bounds(source)` (the bounds that curated it);
- `spool`: curated items kept on disk while `pricer data` balances and splits them;
- `balance`, `report`, `prompts`, `demo`.

It takes a tokenizer object (the CLI loads it), so it imports nothing from `pricer.models`.
"""
