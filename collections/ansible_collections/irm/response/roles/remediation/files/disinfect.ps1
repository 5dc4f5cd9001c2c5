# Kill the worm's processes, stop and disable its services, remove its files and registry keys.
param([string[]]$Processes, [string[]]$Files, [string[]]$Services, [string[]]$RegistryKeys)
$ErrorActionPreference = 'Stop'
$done = @{ killed = @(); disabled = @(); removed = @() }
# Exact names or executable paths (case-insensitive, as Windows compares them), never a command-line
# substring; this script's own process and its ancestors (WinRM's host, the shell) are never touched.
$all = @(Get-CimInstance Win32_Process)
$lineage = @{}
$cur = $PID
while ($cur -and -not $lineage.ContainsKey($cur)) {
    $lineage[$cur] = $true
    $cur = ($all | Where-Object { $_.ProcessId -eq $cur } | Select-Object -First 1).ParentProcessId
}
foreach ($p in $Processes) {
    $isPath = $p -match '^[A-Za-z]:\\'
    $all | Where-Object { if ($isPath) { $_.ExecutablePath -eq $p } else { $_.Name -eq $p } } |
        Where-Object { -not $lineage.ContainsKey([int]$_.ProcessId) -and $_.ProcessId -gt 4 } | ForEach-Object {
            Stop-Process -Id $_.ProcessId -Force
            $done.killed += "$($_.ProcessId) $($_.Name)"
        }
}
foreach ($s in $Services) {
    if (Get-Service -Name $s -ErrorAction SilentlyContinue) {
        Stop-Service -Name $s -Force
        Set-Service -Name $s -StartupType Disabled
        $done.disabled += $s
    }
}
foreach ($f in @($Files) + @($RegistryKeys)) {
    if ($f -and (Test-Path -LiteralPath $f)) {
        Remove-Item -LiteralPath $f -Recurse -Force
        $done.removed += $f
    }
}
$Ansible.Changed = ($done.killed.Count + $done.disabled.Count + $done.removed.Count) -gt 0
$Ansible.Result = $done
