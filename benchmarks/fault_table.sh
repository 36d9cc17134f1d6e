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
  last=$(echo "$out" | grep -v '^\s*$' | grep -v '^make: \*\*\*' | tail -1 | cut -c1-230); printf '%s | rc %s | %.1f s | %s\n' "$name" $rc $(echo "$e - $s" | bc) "$last"; }
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
# --- nothing lost, nothing injected -----------------------------------------------------------------
touch $W/stamp; MK="make --no-print-directory -C $CO PY=$PY PYTHON_BASE=$PY STAMP=$W/stamp"
files_in() { find "$1" -type f 2>/dev/null | wc -l; }
mkdir -p $W/home/Documents $W/home/.ssh; echo work > $W/home/Documents/thesis.tex; echo key > $W/home/.ssh/id
t "1 make clean, outputs = a home folder" env SIMPSONS_OUTPUTS_DIR=$W/home $MK clean
echo "  home files left: $(files_in $W/home) of 2"
n=$(files_in $W/data); SIMPSONS_OUTPUTS_DIR=$W/data $PY -m simpsons_lib.pipeline plan --profile smoke >/dev/null 2>&1
echo "  data folder as outputs, after the plan: $(ls $W/data | tr '\n' ' ')"
t "1 make clean, outputs = data folder" env SIMPSONS_OUTPUTS_DIR=$W/data $MK clean
echo "  data files left: $(files_in $W/data) of $n"
$PY -m simpsons_lib.pipeline demo-data --profile smoke >/dev/null 2>&1; $PY -m simpsons_lib.pipeline plan --profile smoke >/dev/null 2>&1
flock $W/outputs/smoke/.lock sleep 60 & HOLDER=$!; sleep 1
t "1 make clean while the lock is held" $MK clean
echo "  outputs/smoke/.plan still there: $(test -d $W/outputs/smoke/.plan && echo yes || echo no)"; kill $HOLDER 2>/dev/null; wait $HOLDER 2>/dev/null
Q="a' ; touch $W/injected ; echo '"
t "2 make compare A=<quote payload>" $MK compare "A=$Q" B=b PROFILE=smoke
t "2 make predict RUN=<quote payload>" $MK predict "RUN=$Q" IMAGES=x.jpg PROFILE=smoke
t "2 make status PROFILE=<quote payload>" $MK status "PROFILE=$Q"
t "2 make sweep SWEEP=<quote payload>" $MK sweep "SWEEP=$Q" PROFILE=smoke
echo "  shell ran: $(test -e $W/injected && echo YES || echo no)"
t "3 <script> in a title, report table" $PY -c "
from simpsons_lib.reporting import tables
m={'title':'<script>alert(1)</script>','micro_f1':.5,'macro_f1':.5,'accuracy':.5}
print('unescaped <script> on the page:', tables.show(tables.metrics_table({'r':m})).to_html().count('<script>'))"
bomb() { echo "  - &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"; for i in $(seq 1 $(($1 - 1))); do
  echo "  - &a$i [$(printf "*a$((i - 1)), %.0s" 1 2 3 4 5 6 7 8)*a$((i - 1))]"; done; }
mkdir -p $W/params/smoke/sweeps; { echo "run: simple_cnn"; echo "grid:"; echo "  lr:"; echo "  -"; bomb 8 | sed 's/^/  /'; } > $W/params/smoke/sweeps/bomb.yaml
out=$( (ulimit -v 3000000; timeout 120 $PY -m simpsons_lib.pipeline sweep --profile smoke --file bomb) 2>&1); rc=$?
echo "4 sweep file, 8 levels of 9 aliases | rc $rc | output $(echo "$out" | wc -c) bytes | $(echo "$out" | tail -1 | cut -c1-200)"
cp -r $W/params/smoke $W/params/lol; rm -r $W/params/lol/sweeps; { echo "lr:"; bomb 7; } >> $W/params/lol/simple_cnn.yaml
out=$( (ulimit -v 3000000; timeout 120 $PY -m simpsons_lib.pipeline plan --profile lol) 2>&1); rc=$?
echo "4 run file lr, 7 levels | rc $rc | output $(echo "$out" | wc -c) bytes | $(echo "$out" | tail -1 | cut -c1-200)"
$PY -m simpsons_lib.inference.predict --model $W/m.pt $W/data/demo/testset/testset --out $W/p.csv >/dev/null 2>&1
t "6 predict a glob that matches nothing" $PY -m simpsons_lib.inference.predict --model $W/m.pt "$W/nothing*.jpg" --out $W/p.csv
echo "  predictions.csv rows left: $(($(wc -l < $W/p.csv) - 1))"
mkdir -p $W/names; cp $W/data/demo/testset/testset/img1*.jpg $W/names/; cp $W/names/img10.jpg "$W/names/caf$(printf '\351').jpg"
t "6 predict a non-UTF-8 file name" $PY -m simpsons_lib.inference.predict --model $W/m.pt $W/names --out $W/p2.csv
echo "  rows written: $(test -f $W/p2.csv && echo $(($(wc -l < $W/p2.csv) - 1)) || echo none) of $(ls $W/names | wc -l) files"
$PY -c "
from simpsons_lib.config.files import write_json
from simpsons_lib.pipeline import runner
from simpsons_lib.config import paths
import shutil
rp = paths.StudyPaths('smoke').run('simple_cnn').make_dirs(); rp.models.mkdir(parents=True, exist_ok=True)
shutil.copy('$W/m.pt', rp.model_file); write_json(rp.metrics_json, {'micro_f1': .5})
write_json(rp.manifest, {'run': 'simple_cnn', 'products': runner.products(rp, 'train')})
import torch; d = torch.load('$W/m.pt', weights_only=True); d['classes'] = ['x', 'y', 'z']; torch.save(d, rp.model_file)"
t "7 predict with a foreign model.pt" $PY -m simpsons_lib.inference.predict --profile smoke --run simple_cnn $W/data/demo/testset/testset
$PY - <<PYEOF
import io, zipfile
from PIL import Image
def jpg():
    b = io.BytesIO(); Image.new("RGB", (24, 24), (9, 90, 9)).save(b, "JPEG"); return b.getvalue()
def ds(path, test=True, extra={}, method=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", method) as z:
        for c in ("bart", "lisa"):
            z.writestr(f"train/simpsons_dataset/{c}/pic_0000.jpg", jpg())
        if test:
            z.writestr("testset/testset/img0.jpg", jpg())
        for k, v in extra.items():
            z.writestr(k, v)
ds("$W/bomb.zip", extra={"train/zeros.bin": bytes(200 * 2**20)})
ds("$W/notest.zip", test=False)
ds("$W/crc.zip", method=zipfile.ZIP_STORED)
d = bytearray(open("$W/crc.zip", "rb").read()); i = d.rindex(jpg()) + 300; d[i] ^= 255; open("$W/crc.zip", "wb").write(d)
PYEOF
t "8 zip bomb $(($(stat -c %s $W/bomb.zip) / 1024)) KB -> 200 MB" $PY -m simpsons_lib.pipeline.kaggle --zip $W/bomb.zip --out $W/z1
echo "  unpacked: $(du -sm $W/z1 2>/dev/null | cut -f1) MB"
t "8 zip without a test folder" $PY -m simpsons_lib.pipeline.kaggle --zip $W/notest.zip --out $W/z2
echo "  files left: $(files_in $W/z2)"
t "8 zip with a CRC error" $PY -m simpsons_lib.pipeline.kaggle --zip $W/crc.zip --out $W/z3
echo "  files left: $(files_in $W/z3)"
rm -rf "$W" /tmp/x
