# Sourced by .ci/run (root, no standard input), or alone to time it:
#   bash -c 'source .ci/containers.sh'
# Containers on a fresh machine (README "Running the stack in containers"): podman with
# runc, its Docker API for testcontainers (DOCKER_HOST and the two settings exported), and
# the stack's images, so that the tests marked `containers` run. Each step logs its time.
# Nothing is pulled from an image registry (none is reachable): `make images` makes the
# Debian base with debootstrap when it is missing.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
declare -F log >/dev/null || log() { printf '[ci] %s\n' "$*"; }
declare -F wait_for >/dev/null || wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local deadline=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    if (( SECONDS >= deadline )); then log "timed out waiting for $what"; return 1; fi
    sleep 1
  done
  log "$what is up"
}
step_start=$SECONDS
step_done() { log "$1 took $((SECONDS - step_start)) s"; step_start=$SECONDS; }
if ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! command -v debootstrap >/dev/null; then
  log "installing podman, runc and debootstrap"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq podman runc debootstrap >/dev/null
fi
step_done "podman install"
if [[ ! -f /etc/containers/containers.conf ]]; then
  # podman raises RLIMIT_NOFILE by default, which these machines refuse; crun refuses a
  # cgroup v1/v2 hybrid host, runc does not
  log "writing /etc/containers/containers.conf (no default ulimits, runc)"
  mkdir -p /etc/containers
  printf '[containers]\ndefault_ulimits = []\n[engine]\nruntime = "runc"\n' > /etc/containers/containers.conf
fi
podman_socket=/run/podman/podman.sock
if ! curl -fsS --unix-socket "$podman_socket" http://d/_ping >/dev/null 2>&1; then
  log "starting podman's Docker API on $podman_socket"
  mkdir -p /run/podman
  rm -f "$podman_socket"
  nohup podman system service --time=0 "unix://$podman_socket" >/var/tmp/cqo-podman-service.log 2>&1 &
fi
wait_for 30 "podman API" curl -fsS --unix-socket "$podman_socket" http://d/_ping
export DOCKER_HOST="unix://$podman_socket" TESTCONTAINERS_RYUK_DISABLED=true \
       TESTCONTAINERS_CONNECTION_MODE=docker_host
step_done "podman set-up"
make images
step_done "make images"

