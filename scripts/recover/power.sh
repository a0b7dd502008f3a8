# Run as root on the Proxmox host.
VMID=@@vmid@@
TIMEOUT=@@timeout@@
# Restart the VM so cloud-init reads the new drive: `qm reboot` when the guest
# agent answers; else a clean `qm shutdown`, `qm stop` only after the timeout;
# then `qm start`. Prints one `step:` line per thing done.
status=$(qm status "$VMID" | sed -n 's/^status: //p')
if [ "$status" = running ] && qm guest cmd "$VMID" ping >/dev/null 2>&1; then
  echo "step: qm reboot $VMID --timeout $TIMEOUT (the guest agent answers)"
  if qm reboot "$VMID" --timeout "$TIMEOUT"; then exit 0; fi
  echo "step: qm reboot failed"
  status=$(qm status "$VMID" | sed -n 's/^status: //p')
fi
if [ "$status" = running ]; then
  echo "step: qm shutdown $VMID --timeout $TIMEOUT (no guest agent: ACPI)"
  if ! qm shutdown "$VMID" --timeout "$TIMEOUT"; then
    echo "step: qm stop $VMID (the clean shutdown did not finish in ${TIMEOUT}s)"
    qm stop "$VMID"
  fi
fi
echo "step: qm start $VMID"
qm start "$VMID"
