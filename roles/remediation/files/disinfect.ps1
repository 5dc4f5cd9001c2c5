# Kill the worm's processes, stop and disable its services, remove its files and registry keys.
param([string[]]$Processes, [string[]]$Files, [string[]]$Services, [string[]]$RegistryKeys)
$ErrorActionPreference = 'Stop'
$done = @{ killed = @(); disabled = @(); removed = @() }
foreach ($p in $Processes) {
    Get-CimInstance Win32_Process | Where-Object { $_.Name -eq $p -or $_.CommandLine -like "*$p*" } |
        Where-Object { $_.ProcessId -ne $PID } | ForEach-Object {
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
