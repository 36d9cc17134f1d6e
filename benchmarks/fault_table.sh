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

# --- values the plan accepted that could not train, stale results, a sweep outliving its make, small tools ---
# (a block of its own, with its own temporary folder; the same format)
W=$(mktemp -d); export SIMPSONS_OUTPUTS_DIR=$W/outputs SIMPSONS_DATA_DIR=$W/data
mkdir -p $W/params; cp -r $CO/params/smoke $W/params/; export SIMPSONS_PARAMS_DIR=$W/params
$PY -m simpsons_lib.pipeline demo-data --profile smoke >/dev/null 2>&1
variant() { rm -rf $W/params/$1; cp -r $W/params/smoke $W/params/$1; sed -i "/^$3:/d" $W/params/$1/$2.yaml; echo "$4" >> $W/params/$1/$2.yaml; }
$PY -m simpsons_lib.pipeline plan --profile smoke >/dev/null 2>&1
mkdir -p $W/outputs/smoke/models/simple_cnn; echo "not a checkpoint" > $W/outputs/smoke/models/simple_cnn/last.pt
echo "Id,Expected" > $W/outputs/smoke/submission.csv
t "9 run fails in a cell (damaged last.pt)" $PY -m simpsons_lib.pipeline run --profile smoke --run simple_cnn
echo "  submission.csv afterwards: $(test -e $W/outputs/smoke/submission.csv && echo stands || echo removed)"
t "10 300 classes of 3 images, split" $PY -c "
import pandas as pd; from simpsons_lib.data.layout import split_train_val
i=pd.DataFrame([(f'c{c}/{j}.jpg',f'c{c}',c) for c in range(300) for j in range(3)],columns=['path','class_name','label'])
tr,va=split_train_val(i,0.25,0); print(f'{va.class_name.nunique()} of 300 classes validated')"
t "10 val_fraction 0.05 on 42 classes, split" $PY -c "
import pandas as pd; from simpsons_lib.data.layout import split_train_val
i=pd.DataFrame([(f'c{c}/{j}.jpg',f'c{c}',c) for c in range(42) for j in range(11)],columns=['path','class_name','label'])
tr,va=split_train_val(i,0.05,0); print(f'{va.class_name.nunique()} of 42 classes validated')"
variant self mid_cnn worst_from_run "worst_from_run: mid_cnn"
t "11 worst_from_run names its own run, plan" $PY -m simpsons_lib.pipeline plan --profile self
variant ens report ensemble "ensemble: [report, eda]"
t "11 ensemble: [report, eda], plan" $PY -m simpsons_lib.pipeline plan --profile ens
variant seed _common seed "seed: 4294967296"
t "12 seed: 2**32, plan" $PY -m simpsons_lib.pipeline plan --profile seed
variant batch simple_cnn batch_size "batch_size: 1000000000"
t "12 batch_size: 10**9, plan" $PY -m simpsons_lib.pipeline plan --profile batch
t "13 overrides as text (papermill -p)" $PY -c "
from simpsons_lib.config import params; print(params.resolve('smoke','simple_cnn','{epochs: 1}')['run_name'])"
t "13 overrides as a list" $PY -c "
import sys; from simpsons_lib.config import params
try: params.resolve('smoke','simple_cnn',[1,2])
except params.ParameterError as e: sys.exit(f'error: {e}')"
t "14 image edited in place, same size" $PY -c "
import os; from pathlib import Path; from simpsons_lib.data.layout import data_fingerprint
d=Path('$W/data/demo/train'); before=data_fingerprint([d]); f=sorted(d.rglob('*.jpg'))[0]; st=f.stat(); b=f.read_bytes()
f.write_bytes(b[:-64]+bytes(x^255 for x in b[-64:-2])+b[-2:]); os.utime(f,ns=(st.st_atime_ns,st.st_mtime_ns))
print('fingerprint', 'changed' if data_fingerprint([d])!=before else 'unchanged: the runs stay current')"
t "15 JPEG with EXIF Orientation 6 (40x20)" $PY -c "
import numpy as np; from PIL import Image; from simpsons_lib.data.layout import load_rgb
im=Image.fromarray(np.zeros((20,40,3),np.uint8)); e=im.getexif(); e[0x0112]=6; im.save('$W/r.jpg',exif=e)
print('read as', '%dx%d' % load_rgb('$W/r.jpg').size, '(upright: 20x40)')"
touch $W/stamp; cp -r $CO/notebooks $W/nb; sed -i '0,/console.setup_logging()/s//console.setup_logging(/' $W/nb/02_mid_cnn.py
nomake() { "$@" 2>&1 | grep -v '^make: \*\*\*'; return ${PIPESTATUS[0]}; }  # the command's own last line, not make's
t "16 pair-from-py, .py with a syntax error" nomake make --no-print-directory -C $CO pair-from-py NOTEBOOKS=$W/nb PY=$PY STAMP=$W/stamp
t "17 900-point grid (20 s limit)" timeout 20 $PY -m simpsons_lib.pipeline sweep --profile smoke --run simple_cnn \
  --grid "lr=$(seq -s, 1 30 | sed 's/\([0-9]*\)/\1e-4/g') epochs=$(seq -s, 1 30)"
mkdir -p $W/hide; echo "import sys; sys.modules['tensorboard'] = None" > $W/hide/sitecustomize.py
PYTHONPATH=$W/hide:$CO t "18 tracking-ui without TensorBoard" nomake make --no-print-directory -C $CO tracking-ui PY=$PY STAMP=$W/stamp
# kill -9 of the top make during a sweep: seconds until the lock is free (60 s at most)
rm -f $W/outputs/smoke/models/simple_cnn/last.pt
printf 'outer:\n\t$(MAKE) -f %s inner\ninner:\n\t%s -m simpsons_lib.pipeline sweep --profile smoke --run simple_cnn --grid epochs=3,4\n' \
  $W/Makefile $PY > $W/Makefile
rm -f $W/outputs/smoke/notebooks/*.running.ipynb  # an older sweep killed above (17) may have left one
free() { $PY -c "import fcntl,sys; f=open('$W/outputs/smoke/.lock','a+'); fcntl.flock(f,fcntl.LOCK_EX|fcntl.LOCK_NB)" 2>/dev/null; }
running() { ls $W/outputs/smoke/notebooks/*.running.ipynb >/dev/null 2>&1 && ! free; }
env -u MAKEFLAGS -u MAKELEVEL setsid make -s -f $W/Makefile outer >/dev/null 2>&1 & top=$!
for i in $(seq 300); do running && break; sleep 0.5; done
started=$(running && echo "a point running, the lock held" || echo "no point running")
kill -9 $top; wait $top 2>/dev/null; s=$(date +%s.%N)
for i in $(seq 60); do free && break; sleep 1; done
free && state="lock free" || state="lock still held by: $(cat $W/outputs/smoke/.lock)"
sleep 3
printf '5 kill -9 of the top make during make sweep (%s) | %.1f s | %s, %s process(es) of its make left\n' "$started" \
  $(echo "$(date +%s.%N) - $s" | bc) "$state" $(pgrep -g $top | wc -l)
kill -9 -- -$top 2>/dev/null  # what is left of that make's session (older code: the sweep; its kernel follows)
rm -rf "$W"
