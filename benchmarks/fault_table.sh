#!/bin/bash
# The bad inputs of the fault review, each run against a checkout, in a temporary folder:
#   bash benchmarks/fault_table.sh [CHECKOUT]      (default: this one; PY=... picks the interpreter)
# One line per case: what was tried | exit status | seconds until it stopped | its last line of output.
# Run it on an older commit (git worktree add /tmp/old <commit>) to see what that code did.
set -u
CO=$(cd "${1:-$(dirname "$0")/..}" && pwd); PY=${PY:-$(pwd)/.venv/bin/python}
W=$(mktemp -d); export SIMPSONS_OUTPUTS_DIR=$W/outputs SIMPSONS_DATA_DIR=$W/data PYTHONPATH=$CO SIMPSONS_PROGRESS=0
mkdir -p $W/params; cp -r $CO/params/smoke $W/params/; mkdir -p $W/params/empty
export SIMPSONS_PARAMS_DIR=$W/params
cd $CO
$PY -m simpsons_lib.pipeline demo-data --profile smoke >/dev/null 2>&1
t() { name=$1; shift; s=$(date +%s.%N); out=$("$@" 2>&1); rc=$?; e=$(date +%s.%N);
  last=$(echo "$out" | grep -v '^\s*$' | tail -1 | cut -c1-230); printf '%s | rc %s | %.1f s | %s\n' "$name" $rc $(echo "$e - $s" | bc) "$last"; }
rm -rf /tmp/x; t "4 PROFILE=../../../tmp/x" $PY -m simpsons_lib.pipeline locked --plan --profile ../../../tmp/x -- true
echo -n "  /tmp/x holds: "; ls -A /tmp/x 2>/dev/null | tr '\n' ' '; echo
t "4 empty profile" $PY -m simpsons_lib.pipeline locked --plan --profile empty -- true
t "4 missing profile" $PY -m simpsons_lib.pipeline locked --plan --profile nosuch -- true
echo -n "  outputs/nosuch holds: "; ls -A $W/outputs/nosuch 2>/dev/null | tr '\n' ' '; echo
cp -r $W/params/smoke $W/params/nan; echo "lr: .nan" >> $W/params/nan/simple_cnn.yaml
t "7 lr: .nan" $PY -m simpsons_lib.pipeline plan --profile nan
cp -r $W/params/smoke $W/params/dup; echo "epochs: 5" >> $W/params/dup/simple_cnn.yaml
t "8 duplicate key" $PY -m simpsons_lib.pipeline plan --profile dup
rm -f $W/outputs/smoke/.lock; mkdir -p $W/outputs/smoke/.lock
t "10 lock cannot open" $PY -m simpsons_lib.pipeline locked --plan --profile smoke -- true
rmdir $W/outputs/smoke/.lock
t "11 crafted model.pt image_size 0" $PY -c "
import torch,sys
from simpsons_lib.training.models import build_model_from_params
from simpsons_lib.training import checkpoints
p={'arch':'simple_cnn','image_size':96,'backbone':'resnet50','head_hidden':512,'head_dropout':0.0,'dropout':0.5}
m=build_model_from_params(p,3,weights=None); f=checkpoints.export_model('$W/m.pt',m,['a','b','c'],p)
d=torch.load(f,weights_only=True); d['params']['image_size']=0; torch.save(d,'$W/mc.pt')"
t "11 predict crafted model.pt" $PY -m simpsons_lib.inference.predict --model $W/mc.pt $W/data/demo/testset/testset
t "11 predict --batch-size 0" $PY -m simpsons_lib.inference.predict --model $W/m.pt $W/data/demo/testset/testset --batch-size 0
mkdir -p $W/outdir.csv
t "10 predict --out unwritable" $PY -m simpsons_lib.inference.predict --model $W/m.pt $W/data/demo/testset/testset --out $W/outdir.csv
# bombs and symlinks in a copy of the test folder
cp -r $W/data/demo $W/bad; $PY - <<PYEOF
import io
from PIL import Image
b=io.BytesIO(); Image.new("RGB",(16,16)).save(b,"JPEG"); d=bytearray(b.getvalue()); i=d.index(b"\xff\xc0")
d[i+5:i+9]=(15000).to_bytes(2,"big")+(15000).to_bytes(2,"big"); open("$W/bad/testset/testset/bomb.jpg","wb").write(d)
PYEOF
cp -r $W/params/smoke $W/params/bad; sed -i "s#^dataset: demo#data_dir: $W/bad\non_bad_image: skip#" $W/params/bad/_common.yaml
sed -i 's/^answers.*//' $W/params/bad/_common.yaml; rm -f $W/bad/.demo*
cp $W/bad/sample_submission.csv $W/sample.csv
sample_with() { cp $W/sample.csv $W/bad/sample_submission.csv; echo "$1,bart_simpson" >> $W/bad/sample_submission.csv; }
sample_with bomb.jpg
t "5 bomb in test folder (skip), plan" $PY -m simpsons_lib.pipeline plan --profile bad
t "5 bomb, predict" $PY -m simpsons_lib.inference.predict --model $W/m.pt $W/bad/testset/testset --out $W/p.csv
rm $W/bad/testset/testset/bomb.jpg; sample_with loop.jpg; ln -s loop.jpg $W/bad/testset/testset/loop.jpg
t "6 looping symlink (skip), plan" $PY -m simpsons_lib.pipeline plan --profile bad
rm $W/bad/testset/testset/loop.jpg; sample_with dangling.jpg; ln -s $W/nothing.jpg $W/bad/testset/testset/dangling.jpg
t "6 dangling symlink (skip), plan" $PY -m simpsons_lib.pipeline plan --profile bad
rm $W/bad/testset/testset/dangling.jpg; cp $W/sample.csv $W/bad/sample_submission.csv; cp $W/bad/testset/testset/$(ls $W/bad/testset/testset | head -1) $W/bad/testset/testset/extra1.jpg
t "9 test image not in sample_submission, plan" $PY -m simpsons_lib.pipeline plan --profile bad
rm -rf "$W" /tmp/x
