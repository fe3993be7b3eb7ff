#!/usr/bin/env bash
# pop jobs from /work/runs/kal/queue (one per line: name|method|env|seed|steps|eval|config) and run them niced, 1 thread
cd /work/main
Q=/work/runs/kal/queue
while true; do
  job=$(flock $Q.lock bash -c "head -1 $Q; sed -i 1d $Q")
  [ -z "$job" ] && break
  IFS='|' read -r name method env seed steps ev cfg <<< "$job"
  echo "$(date +%T) w$1 start $name seed $seed load $(cut -d' ' -f1-3 /proc/loadavg)" >> /work/runs/kal/logs/chain.log
  OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 nice -n 5 .venv/bin/python -m gymgen.agents.marl.reproduce run --method "$method" --env "$env" --seed "$seed" \
    --steps "$steps" --eval-every "$ev" --config "$cfg" --out "/work/runs/kal/$name.jsonl" > "/work/runs/kal/logs/$name-$seed.log" 2>&1
  echo "$(date +%T) w$1 end $name seed $seed rc $? load $(cut -d' ' -f1-3 /proc/loadavg)" >> /work/runs/kal/logs/chain.log
done
echo "$(date +%T) w$1 done" >> /work/runs/kal/logs/chain.log
