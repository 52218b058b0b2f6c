#!/usr/bin/env bash
# GTZAN recipe: reproduce the papers' models on the REAL audio with the artist-filtered split.
#
#   bench/gtzan.sh ARCHIVE [OUTDIR]
#
# ARCHIVE: a local GTZAN copy (genres.tar.gz with genres/<genre>/<genre>.000NN.au, the Kaggle zip
# with Data/genres_original/..., or an extracted folder). Nothing is downloaded.
#
# What it does (every step is a plain `genre` command with an explicit output path, so re-running
# skips what is up to date):
#   1. fetch with the artist-filtered split (Kereliuk, Sturm & Larsen 2015: 443/197/290 clips);
#   2. segment + featurize as each paper did (recipes are named 000-004 after the papers, in the
#      order of genre_cli.papers.PAPERS):
#        000  [Pun & Nazirkhanova 2020] 3 s windows, no overlap; 128-band log-mel + the 93 hand-crafted statistics
#             -> cnn-mlp, mlp, logreg, svm, naive-bayes, knn, random-forest
#        001  [F. Zhang 2022] 5 random non-overlapping 3 s windows per clip; 128 mels, n_fft 2048, hop 512
#             -> resnet18, bigru, res-bigru
#        002  [Schrader et al. 2021] 10 x 5 s windows (hop 2.5 s) with 128 mels -> cnn6;
#             the whole 30 s clip as 30x30 MFCC blocks (--mfcc-frames 30x30 when the CLI has it,
#             else frame-level --mfcc 30) -> lstm
#        003  [Verma et al. 2022] 3 s windows; 64 mels, n_fft 512, hop 256 -> cnn3
#        004  [Yang & Zhang 2019] 128 STFT frames (n_fft 1024, hop 512, ~3 s); 256 mels -> dupconv, rescat
#             (Adadelta lr 1.0, batch 50 as in the paper)
#   3. train each model (--device auto: CUDA when there is one) for each random seed (SEEDS);
#   4. evaluate on the test split at TRACK level (mean of segment probabilities), plus the
#      validation split (a tuning score, flagged) — and write OUTDIR/report.md + report.json.
#
# Environment (defaults in brackets):
#   GENRE             command that runs the CLI [python -m genre_cli]
#   GTZAN_DEVICE      [auto]           GTZAN_EPOCHS [30]       GTZAN_SEEDS ["0 1 2"]
#   GTZAN_RECIPES     ["000 001 002 003 004"]
#   GTZAN_MODELS      restrict to these model names (space separated) [all of each recipe]
#   GTZAN_EXTRA_TRAIN extra `genre train` flags for the networks, e.g. "--class-weights balanced"
#                     or augmentation flags once the CLI has them
#   GTZAN_QUICK=1     smoke mode: 1 epoch, seed 0, tiny models and mel bands (numbers mean nothing)
#   GTZAN_BATCH=1     run all `genre` commands in ONE Python process (saves the torch import per
#                     step; used by the test)
#   GTZAN_RANDOM_K    windows per clip of recipe 001 [5]
set -euo pipefail

usage() { echo "usage: $0 ARCHIVE [OUTDIR]" >&2; exit 2; }
[[ $# -ge 1 && $# -le 2 ]] || usage
ARCHIVE=$1
OUT=${2:-gtzan-run}
[[ -e "$ARCHIVE" ]] || { echo "error: $ARCHIVE does not exist (this recipe never downloads GTZAN)" >&2; exit 2; }

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
GENRE=${GENRE:-python -m genre_cli}
DEVICE=${GTZAN_DEVICE:-auto}
EPOCHS=${GTZAN_EPOCHS:-30}
SEEDS=${GTZAN_SEEDS:-0 1 2}
RECIPES=${GTZAN_RECIPES:-000 001 002 003 004}
MODELS=${GTZAN_MODELS:-}
EXTRA=${GTZAN_EXTRA_TRAIN:-}
QUICK=${GTZAN_QUICK:-0}
BATCH=${GTZAN_BATCH:-0}
RANDOM_K=${GTZAN_RANDOM_K:-5}
MEL128=128 MEL64=64 MEL256=256
if [[ $QUICK == 1 ]]; then
  EPOCHS=1 SEEDS=0 MEL128=16 MEL64=16 MEL256=32
fi
mkdir -p "$OUT/work"
W=$OUT/work
QUEUE=$OUT/commands.txt
: > "$QUEUE"
START=$(date +%s)

# Tiny model sizes for QUICK mode (GPU runs use the paper sizes, the registry defaults).
small() {
  [[ $QUICK == 1 ]] || return 0
  case $1 in
    cnn6) echo '--set filters=[4,8] --set dropout=0.1' ;;
    cnn3) echo '--set filters=[4,4,4] --set dense=[8,8]' ;;
    cnn-mlp) echo '--set base_filters=2 --set n_stages=1 --set mlp_widths=[8] --set branch_out=4 --set hidden=4' ;;
    resnet18) echo '--set width=4' ;;
    bigru) echo '--set hidden=4 --set layers=1' ;;
    res-bigru) echo '--set width=4 --set hidden=4 --set layers=1' ;;
    lstm) echo '--set units=4 --set layers=1 --set dense=4' ;;
    dupconv|rescat) echo '--set filters=4' ;;
    mlp) echo '--set hidden=8 --set depth=2' ;;
    random-forest) echo '--set n_estimators=10' ;;
    knn) echo '--set k=1' ;;
  esac
}

want() { [[ -z $MODELS ]] || [[ " $MODELS " == *" $1 "* ]]; }

# genre ARGS: run now, or queue for the one-process batch; either way OUTDIR/commands.txt records it
genre() {
  printf '%s\n' "$(printf '%q ' "$@")" >> "$QUEUE"
  if [[ $BATCH != 1 ]]; then
    echo "+ genre $*" >&2
    $GENRE "$@" > /dev/null
  fi
}

# Which CLI flags exist (parallel work adds --mfcc-frames, --class-weights, ...)
FEAT_HELP=$(COLUMNS=200 $GENRE featurize --help 2>&1 || true)
if grep -q -- "--mfcc-frames" <<<"$FEAT_HELP"; then LSTM_FEAT="--mfcc-frames 30x30"; else LSTM_FEAT="--mfcc 30"; fi
[[ $QUICK == 1 && $LSTM_FEAT == "--mfcc 30" ]] && LSTM_FEAT="--mfcc 8"
[[ $QUICK == 1 && $LSTM_FEAT == "--mfcc-frames 30x30" ]] && LSTM_FEAT="--mfcc-frames 8x8"

# 1. fetch: the artist-filtered split is the default of `genre fetch gtzan`
genre fetch gtzan --from "$ARCHIVE" --root "$OUT/data" --offline --workdir "$W" -o "$W/index.h5"

# recipe NAME SEGMENT-ARGS -- FEATURIZE-ARGS -- "MODEL[:TRAIN-ARGS]" ...
EVALS=()
recipe() {
  local name=$1; shift
  local seg=() feat=() models=()
  while [[ $1 != -- ]]; do seg+=("$1"); shift; done; shift
  while [[ $1 != -- ]]; do feat+=("$1"); shift; done; shift
  models=("$@")
  local todo=()
  for spec in "${models[@]}"; do want "${spec%%:*}" && todo+=("$spec"); done
  [[ ${#todo[@]} -gt 0 ]] || return 0
  genre segment "$W/index.h5" "${seg[@]}" --workdir "$W" -o "$W/seg-$name.h5"
  genre featurize "$W/seg-$name.h5" "${feat[@]}" --workdir "$W" -o "$W/feat-$name.h5"
  local trained=()
  for spec in "${todo[@]}"; do
    local model=${spec%%:*} targs=""
    [[ $spec == *:* ]] && targs=${spec#*:}
    local is_net=1
    case $model in logreg|svm|knn|naive-bayes|random-forest) is_net=0 ;; esac
    for seed in $SEEDS; do
      local o="$W/model-$name-$model-s$seed.h5"
      # shellcheck disable=SC2086  # word splitting of the option strings is intended
      if [[ $is_net == 1 ]]; then
        genre train "$W/feat-$name.h5" --model "$model" --seed "$seed" --epochs "$EPOCHS" --device "$DEVICE" $targs $EXTRA $(small "$model") --workdir "$W" -o "$o"
      else
        genre train "$W/feat-$name.h5" --model "$model" --seed "$seed" $(small "$model") --workdir "$W" -o "$o"
      fi
      trained+=("$o")
      [[ $is_net == 1 || $model == random-forest ]] || break  # deterministic fit: one seed is enough
    done
  done
  genre evaluate "${trained[@]}" "$W/feat-$name.h5" --split test --device "$DEVICE" --workdir "$W" -o "$W/eval-$name-test.h5"
  genre evaluate "${trained[@]}" "$W/feat-$name.h5" --split validation --allow-leakage --device "$DEVICE" --workdir "$W" -o "$W/eval-$name-validation.h5"
  EVALS+=("$name")
}

for r in $RECIPES; do
  case $r in
    000) recipe 000 --seconds 3 --hop 3 -- --mel "$MEL128" --handcrafted -- \
           cnn-mlp mlp logreg svm naive-bayes knn random-forest ;;
    001) recipe 001 --seconds 3 --random "$RANDOM_K" -- --mel "$MEL128" --n-fft 2048 --hop-length 512 -- \
           resnet18 bigru res-bigru ;;
    002) recipe 002-cnn --seconds 5 --hop 2.5 --first 10 --last pad -- --mel "$MEL128" -- cnn6
         recipe 002-lstm --seconds 30 --first 1 --last pad -- $LSTM_FEAT -- lstm ;;
    003) recipe 003 --seconds 3 --hop 3 -- --mel "$MEL64" --n-fft 512 --hop-length 256 -- cnn3 ;;
    004) recipe 004 --frames 128 --frame-hop 512 -- --mel "$MEL256" --n-fft 1024 --hop-length 512 -- \
           "dupconv:--optimizer adadelta --lr 1.0 --batch-size 50" "rescat:--optimizer adadelta --lr 1.0 --batch-size 50" ;;
    *) echo "error: unknown recipe $r (000 001 002 003 004)" >&2; exit 2 ;;
  esac
done

if [[ $BATCH == 1 ]]; then
  # One Python process runs the queued commands through the same typer app as `genre`.
  python - "$QUEUE" <<'PY'
import shlex, sys
from genre_cli.cli import app
for line in open(sys.argv[1]):
    argv = shlex.split(line)
    if not argv:
        continue
    print("+ genre " + " ".join(argv), file=sys.stderr, flush=True)
    try:  # standalone mode: the app always ends with SystemExit(exit code), as `genre` does
        app(args=argv, prog_name="genre")
        rc = 0
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    if rc:
        print(f"error: step failed with exit code {rc}: genre {line.strip()}", file=sys.stderr)
        sys.exit(rc)
PY
fi

# 4. report: one row per model, mean ± std over seeds; test split, track level
python - "$OUT" "$W" "$(( $(date +%s) - START ))" "$DEVICE" "$QUICK" "${EVALS[@]}" <<'PY'
import json, statistics, sys, pathlib, datetime
out, w, wall, device, quick, names = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5] == "1", sys.argv[6:]
rows = []
for name in names:
    test = json.loads((w / f"eval-{name}-test.json").read_text())
    val = {r["model"]: r for r in json.loads((w / f"eval-{name}-validation.json").read_text())}
    by_model = {}
    for rep in test:
        by_model.setdefault(rep["model_name"], []).append(rep)
    for model, reps in by_model.items():
        def ms(key, level="track", src=None):
            vals = [(src or {}).get(r["model"], r)[level][key] for r in reps] if src is not None else [r[level][key] for r in reps]
            return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)
        rows.append({"recipe": name, "model": model, "seeds": len(reps), "dataset": reps[0]["dataset"], "split": "test (artist-filtered)",
                     "level": f"track ({reps[0]['aggregate']} of segment probabilities)", "n_tracks": reps[0]["n_tracks"], "n_segments": reps[0]["n_segments"],
                     "accuracy": ms("accuracy"), "balanced_accuracy": ms("balanced_accuracy"), "macro_f1": ms("macro_f1"),
                     "segment_accuracy": ms("accuracy", "segment"),
                     "validation_accuracy": ms("accuracy", src=val) if all(r["model"] in val for r in reps) else None,
                     "models": [r["model"] for r in reps]})
report = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "device": device, "quick": quick, "wall_seconds": wall,
          "split": "GTZAN artist-filtered (Kereliuk, Sturm & Larsen 2015), test list", "level": "track", "rows": rows}
(out / "report.json").write_text(json.dumps(report, indent=1))
f = lambda m: f"{100 * m[0]:.1f} ± {100 * m[1]:.1f}"
lines = ["# GTZAN report (bench/gtzan.sh)", "",
         f"{'**QUICK smoke run: numbers mean nothing.** ' if quick else ''}Device {device}; wall time {wall} s; {report['date']}.", "",
         f"Split: {report['split']}. Level: track (mean of segment probabilities); segment accuracy for reference. "
         "Validation accuracy is a tuning score (the validation split chose the epoch).", "",
         "| recipe | model | seeds | test tracks | track acc | track bal. acc | track macro-F1 | segment acc | validation acc |",
         "|---|---|---|---|---|---|---|---|---|"]
for r in rows:
    lines.append(f"| {r['recipe']} | {r['model']} | {r['seeds']} | {r['n_tracks']} | {f(r['accuracy'])} | {f(r['balanced_accuracy'])} | {f(r['macro_f1'])} | "
                 f"{f(r['segment_accuracy'])} | {f(r['validation_accuracy']) if r['validation_accuracy'] else '–'} |")
lines += ["", "Commands: see commands.txt / the shell trace; every artifact records its parameters (`genre info FILE`)."]
(out / "report.md").write_text("\n".join(lines) + "\n")
print(out / "report.md")
PY
