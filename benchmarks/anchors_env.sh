#!/usr/bin/env bash
# Creates (or brings up to date) the anchors' own environments, apart from the product's:
#   benchmarks/anchors/flaml/.venv      FLAML 2.7, LightGBM 4.7, Optuna 5.0, scikit-learn 1.9
#                                       (anchors.py systems flaml, lgbm, optuna_lgbm, hgb)
#   benchmarks/anchors/autogluon/.venv  AutoGluon 1.6.3 tabular (LightGBM, CatBoost, XGBoost;
#                                       no torch)          (systems autogluon, autogluon_best)
# Idempotent: `uv sync --frozen` installs from each folder's uv.lock and does nothing when the
# venv already matches it. `make bench-envs` calls this; benchmarks/run_bench.py uses the venvs.
#
#   benchmarks/anchors_env.sh            # both
#   benchmarks/anchors_env.sh flaml      # one
#   benchmarks/anchors_env.sh --lock     # re-resolve the uv.lock files first (after a pin change)
set -euo pipefail
export UV_PYTHON_DOWNLOADS=never
# PYTHONDONTWRITEBYTECODE is set on these machines: without compiled bytecode every anchor run
# would recompile pandas, scikit-learn, AutoGluon... (seconds per run, charged to its wall time).
export UV_COMPILE_BYTECODE=1

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if command -v uv >/dev/null 2>&1; then UV=(uv); else UV=(python3 -m uv); fi

lock=0
envs=()
for arg in "$@"; do
    case "$arg" in
        --lock) lock=1 ;;
        flaml|autogluon) envs+=("$arg") ;;
        *) echo "usage: $0 [--lock] [flaml] [autogluon]" >&2; exit 2 ;;
    esac
done
[ ${#envs[@]} -gt 0 ] || envs=(flaml autogluon)

for env in "${envs[@]}"; do
    dir="$HERE/anchors/$env"
    (
        cd "$dir"
        if [ "$lock" = 1 ] || [ ! -f uv.lock ]; then "${UV[@]}" lock --python 3.11; fi
        start=$(date +%s)
        "${UV[@]}" sync --frozen --python 3.11 --quiet
        # No torch or CUDA wheels may land here (torch from PyPI brings gigabytes of CUDA).
        if compgen -G ".venv/lib/python3.11/site-packages/torch" >/dev/null \
            || compgen -G ".venv/lib/python3.11/site-packages/nvidia*" >/dev/null; then
            echo "anchors_env: torch or CUDA wheels in $dir/.venv: fix the pins" >&2
            exit 1
        fi
        .venv/bin/python - <<'EOF'
import importlib.metadata as md
names = ("flaml", "autogluon.tabular", "lightgbm", "optuna", "xgboost", "xgboost-cpu",
         "catboost", "scikit-learn", "pandas", "numpy")
found = []
for name in names:
    try:
        found.append(f"{name} {md.version(name)}")
    except md.PackageNotFoundError:
        pass
print("  " + ", ".join(found))
EOF
        echo "anchors_env: $env ready in $(( $(date +%s) - start )) s, $(du -sh .venv | cut -f1)"
    )
done
