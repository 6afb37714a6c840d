# The training chunks a run asks for, one line each: SEED DEFECT_RATE [xpole synth options], CHUNK
# frames each (default 250): TRAIN frames at seeds 1001.., DEFECT_FRAMES all-FAIL frames at 1101..,
# SIZE_FRAMES frames at 1201.. drawn at the sizes of SIZES in turn, WIDE_FRAMES frames at 1301..
# whose cathode tips scatter 1.5-12 px about their line (overhangs that vary across the spec
# within a PASS frame), LOOK_FRAMES frames at 1501.. (defect rate 0.5) whose cathodes also vary in
# thickness and contrast and whose missing cathodes often hide in the dark overlap zone (with
# LOOK_HIDDEN=0 none hides: seeds 1551.., so the two kinds never share a directory). Sourced by
# make_data.sh, which renders them into DATA/train-SEED, and by train.sh, which trains on exactly
# those (and names them in the model card).
CHUNK_SIZES=${SIZES:-256x256 512x512 256x1024 1024x256 384x640}
WIDE_OPTIONS="--cathode-scatter 1.5,12"
LOOK_RATE=0.5 # defect rate: more missing cathodes to hide
LOOK_OPTIONS="--cathode-scatter 0.15,12 --cathode-thickness 0.25,1 --cathode-contrast 0.4,2"
case ${LOOK_HIDDEN:-1} in
  1) LOOK_SEED=1501 LOOK_OPTIONS+=" --hidden-missing 0.7" ;;
  0) LOOK_SEED=1551 ;;
  *) echo "LOOK_HIDDEN must be 1 (missing cathodes often hidden in the overlap zone, the default) or 0 (never), got $LOOK_HIDDEN" >&2; return 2 ;;
esac
training_chunks() { # TRAIN_FRAMES
  local chunk=${CHUNK:-250} i size sizes
  read -r -a sizes <<< "$CHUNK_SIZES"
  for ((i = 0; i * chunk < $1; i++)); do echo "$((1001 + i)) 0.3"; done
  for ((i = 0; i * chunk < ${DEFECT_FRAMES:-0}; i++)); do echo "$((1101 + i)) 1"; done
  for ((i = 0; i * chunk < ${SIZE_FRAMES:-0}; i++)); do
    size=${sizes[$((i % ${#sizes[@]}))]}
    echo "$((1201 + i)) 0.3 --width ${size%x*} --height ${size#*x}"
  done
  for ((i = 0; i * chunk < ${WIDE_FRAMES:-0}; i++)); do echo "$((1301 + i)) 0.3 $WIDE_OPTIONS"; done
  for ((i = 0; i * chunk < ${LOOK_FRAMES:-0}; i++)); do echo "$((LOOK_SEED + i)) $LOOK_RATE $LOOK_OPTIONS"; done
}
