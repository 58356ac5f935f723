#!/bin/bash
# Suite "base": what the OS base image promises, and so every image built on it: the SSM agent
# starts at boot, sshd runs with the hardening of os-base.sh, and nothing of the build's SSH access
# is left (Packer's key, the build instance's host keys). Sourced by run.sh, which defines check,
# pass, problem, requires and ROOT.
# Inputs: SSH_USERNAME (the build's login user), SSHD (sshd executable, default sshd).
set -euo pipefail

requires SSH_USERNAME

# The values os-base.sh writes, as `sshd -T` prints them (keyword in lower case).
SSHD_HARDENING="permitrootlogin no
passwordauthentication no
kbdinteractiveauthentication no
permitemptypasswords no
x11forwarding no
allowagentforwarding no
maxauthtries 3
clientaliveinterval 300
clientalivecountmax 2"

# `systemctl enable` links the unit into multi-user.target.wants; that link is what starts it at boot.
ssm_agent_enabled() {
  local wants=/etc/systemd/system/multi-user.target.wants link target ok=1
  link="${ROOT}${wants}/amazon-ssm-agent.service"
  if [ ! -L "$link" ]; then
    problem "no ${wants}/amazon-ssm-agent.service link: the agent would not start at boot (systemctl enable amazon-ssm-agent)"
    return
  fi
  target="$(readlink "$link")"
  case "$target" in /*) ;; *) target="${wants}/${target}" ;; esac
  if [ ! -f "${ROOT}${target}" ]; then
    problem "${wants}/amazon-ssm-agent.service points to ${target}, which does not exist"
    ok=0
  fi
  if [ ! -x "${ROOT}/usr/bin/amazon-ssm-agent" ]; then
    problem "/usr/bin/amazon-ssm-agent is missing or not executable"
    ok=0
  fi
  if [ "$ok" -eq 1 ]; then pass "amazon-ssm-agent.service enabled (${target})"; fi
}

# Proven in force, not only written: `sshd -T` prints what sshd would run with (every Include and
# ordering applied). image-cleanup.sh removed the host keys and sshd -T refuses to run without
# one, so it is given a throwaway key that is deleted again.
sshd_hardening() {
  local sshd="${SSHD:-sshd}" keys effective errors line got missing=()
  if ! command -v "$sshd" >/dev/null 2>&1; then
    problem "sshd not found: the image must run OpenSSH's sshd (package openssh-server)"
    return
  fi
  keys="$(mktemp -d)"
  if ! ssh-keygen -q -t ed25519 -N '' -C image-tests -f "${keys}/host_key" >/dev/null 2>&1; then
    rm -rf "$keys"
    problem "ssh-keygen could not make the throwaway host key sshd -T needs"
    return
  fi
  local args=(-T -h "${keys}/host_key")
  if [ -n "$ROOT" ]; then args+=(-f "${ROOT}/etc/ssh/sshd_config"); fi
  effective="$("$sshd" "${args[@]}" 2>"${keys}/stderr")" || {
    errors="$(tr '\n' ' ' <"${keys}/stderr")"
    rm -rf "$keys"
    problem "\`sshd ${args[*]}\` failed, sshd would not start with this configuration: ${errors}"
    return
  }
  rm -rf "$keys"
  while IFS= read -r line; do
    if ! grep -qxF -- "$line" <<<"$effective"; then
      got="$(grep -m1 -- "^${line%% *} " <<<"$effective" || true)"
      missing+=("${line} (sshd -T: ${got:-not listed})")
    fi
  done <<<"$SSHD_HARDENING"
  if [ "${#missing[@]}" -gt 0 ]; then
    problem "not in force: $(IFS=';'; printf '%s' "${missing[*]}")"
  else
    pass "sshd -T shows every hardened value in force"
  fi
}

# Packer's temporary key is deleted from AWS after the build; authorised on the image it would open
# every instance to whoever kept it. cloud-init adds the launch key at first boot.
no_build_user_keys() {
  local home file left=()
  home="$(awk -F: -v u="$SSH_USERNAME" '$1 == u { print $6 }' "${ROOT}/etc/passwd" 2>/dev/null || true)"
  for file in "${ROOT}${home:-/home/${SSH_USERNAME}}/.ssh/authorized_keys" "${ROOT}"/home/*/.ssh/authorized_keys "${ROOT}/root/.ssh/authorized_keys"; do
    if [ -s "$file" ]; then left+=("${file#"${ROOT}"}"); fi
  done
  if [ "${#left[@]}" -gt 0 ]; then
    problem "keys still authorised in $(printf '%s\n' "${left[@]}" | sort -u | tr '\n' ' ')(image-cleanup.sh empties them)"
  else
    pass "no authorized_keys of ${SSH_USERNAME}, root or any user holds a key"
  fi
}

# One host key pair baked into an image would be every instance's: each generates its own at boot.
no_ssh_host_keys() {
  local key left=()
  for key in "${ROOT}"/etc/ssh/ssh_host_*key*; do
    if [ -e "$key" ]; then left+=("${key#"${ROOT}"}"); fi
  done
  if [ "${#left[@]}" -gt 0 ]; then
    problem "host keys left on the image: ${left[*]} (image-cleanup.sh removes them)"
  else
    pass "no SSH host key on the image"
  fi
}

check "ssm agent enabled" ssm_agent_enabled
check "sshd hardening in force" sshd_hardening
check "no build user keys" no_build_user_keys
check "no ssh host keys" no_ssh_host_keys
