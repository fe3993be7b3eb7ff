#!/usr/bin/env bash
# Kaleidoscope vs baselines, one cpu-slot job at a time (sequential), each appending JSON lines per evaluation.
cd /work/wt/kal
R() { # name method env seed steps eval config
  echo "$(date +%T) start $1 $2 seed $4 load $(cut -d' ' -f1-3 /proc/loadavg)" >> runs/logs/chain.log
  /work/tools/cpu-slot .venv/bin/python -m gymgen.agents.marl.reproduce run --method "$2" --env "$3" --seed "$4" \
    --steps "$5" --eval-every "$6" --config "$7" --out "runs/$1.jsonl" > "runs/logs/$1-$4.log" 2>&1
  echo "$(date +%T) end $1 rc $? load $(cut -d' ' -f1-3 /proc/loadavg)" >> runs/logs/chain.log
}
P=gymgen/SMACLite-protoss_5v5-v0
H=gymgen/MaMuJoCo-HalfCheetah-2x3-v0
KQ='{"total_env_steps":30000,"epsilon_anneal_steps":15000,"masks":"unit_type","div_beta":5.0,"reset_interval":10000,"reset_ratio":0.2}'
Q='{"epsilon_anneal_steps":15000,"post_rnn":[64,64]}'
MT='{"total_env_steps":12000,"hidden":[64,64],"batch_size":256,"warmup_steps":3000,"updates_per_step":0.5,"sharing":"full+id"}'
KM='{"total_env_steps":12000,"hidden":[64,64],"batch_size":256,"warmup_steps":3000,"updates_per_step":0.5,"reset_interval":4000,"critic_reset_interval":3000}'
for s in 0 1 2; do
  R kq_protoss kaleidoscope_qmix $P $s 30000 10000 "$KQ"
  R q_protoss qmix $P $s 30000 10000 "$Q"
  R km_cheetah kaleidoscope_matd3 $H $s 12000 4000 "$KM"
  R m_cheetah matd3 $H $s 12000 4000 "$MT"
done
echo "$(date +%T) chain done" >> runs/logs/chain.log
