#!/usr/bin/env bash
# One prepared GPU check (issue 7): run on a machine with CUDA, from the repo root.
#   DATA=<folder with beauty/ and garden/> OUT=<folder for logs> bash benchmarks/gpu_check.sh
# Needs torch with CUDA, numpy, tqdm, tensorboard, pyyaml; gymnasium, stable-baselines3
# and sb3-contrib are installed from .whl/ when that folder exists (no network there).
set -uo pipefail
DATA=${DATA:-../shared/data}
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
if [ -d /tmp/site/gymnasium ]; then
  export PYTHONPATH=/tmp/site:$PWD
elif [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 - <<'PY' 2>&1 | tee "$OUT/equivalence.txt"
# CUDA and CPU give the same scores and the same MDP rewards for the same weights.
import torch, numpy as np, gymnasium as gym, warnings
import adasplit_env
from adasplit_env.envs.core import build_env_parts
from adasplit_env.scoring import score_all_items
from adasplit_env.envs import AllocationEnv
from gymnasium.utils.env_checker import check_env
import os
data = os.environ.get("DATA", "../shared/data")
cpu = build_env_parts("garden", data, model_seed=0)
gpu = build_env_parts("garden", data, model_seed=0, device="cuda")
samples = cpu.dataset.split.eval_samples("test", 10).subset(slice(0, 256))
cpu.process.model.eval(); gpu.process.model.eval()
a = score_all_items(cpu.process, samples); b = score_all_items(gpu.process, samples).cpu()
finite = torch.isfinite(a)
print("scorer max |cpu - cuda|:", (a[finite] - b[finite]).abs().max().item(),
      "top-10 overlap:", np.mean([len(set(a[i].topk(10).indices.tolist()) & set(b[i].topk(10).indices.tolist())) / 10 for i in range(256)]))
env = AllocationEnv("garden", data_dir=data, device="cuda")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    check_env(env)
obs, info = env.reset(seed=0)
steps = 0
rng = np.random.default_rng(0)
for _ in range(200):
    obs, r, term, trunc, info = env.step(int(rng.choice(np.flatnonzero(info["action_mask"]))))
    steps += 1
    if term:
        obs, info = env.reset()
print("cuda env: check_env passed,", steps, "steps")
PY
# The paper's model (REINFORCE), then the AdaSplit+ preset on the sequential path and on
# the parallel one with each group state (issue 27).
python3 benchmarks/train_throughput.py --dataset beauty --data-dir "$DATA" --device cuda --algos reinforce --updates 60 --eval-users 4096 2>&1 | tee "$OUT/train_throughput_cuda.txt"
python3 benchmarks/train_throughput.py --dataset beauty --data-dir "$DATA" --device cuda --config configs/beauty-plus.yaml --algos reinforce --updates 60 --eval-users 4096 \
  --variant parallel-attn_gru:train_path=parallel \
  --variant parallel-gated:train_path=parallel,group_updater=gated \
  --variant parallel-mean:train_path=parallel,group_updater=mean \
  --variant parallel-gated-b1024:train_path=parallel,group_updater=gated,batch_size=1024 2>&1 | tee "$OUT/train_throughput_plus_cuda.txt"
