# Verify a remediated Windows host: infection gone, fixes installed, services answering. Changes nothing.
param([string[]]$Processes, [string[]]$Files, [string[]]$RegistryKeys, [string[]]$Kb, [object[]]$Health)
$ErrorActionPreference = 'Stop'
$r = @{ infected = @(); unfixed = @(); unhealthy = @() }
$running = Get-CimInstance Win32_Process
foreach ($p in $Processes) {
    $isPath = $p -match '^[A-Za-z]:\\'
    if ($running | Where-Object { if ($isPath) { $_.ExecutablePath -eq $p } else { $_.Name -eq $p } } |
            Where-Object { $_.ProcessId -ne $PID }) {
        $r.infected += "process matches '$p'"
    }
}
foreach ($f in @($Files) + @($RegistryKeys)) {
    if ($f -and (Test-Path -LiteralPath $f)) { $r.infected += "$f present" }
}
$threats = @(Get-MpThreat -ErrorAction SilentlyContinue | Where-Object { $_.IsActive })
if ($threats.Count -gt 0) { $r.infected += "antivirus: active threats $($threats.ThreatName -join ', ')" }
$installed = @((Get-HotFix).HotFixID)
foreach ($k in $Kb) { if ($installed -notcontains $k) { $r.unfixed += "$k not installed" } }
foreach ($h in $Health) {
    $client = New-Object System.Net.Sockets.TcpClient
    try {
        if (-not $client.ConnectAsync($h.address, [int]$h.port).Wait(3000)) {
            $r.unhealthy += "$($h.name) $($h.address):$($h.port) (timeout)"
        }
    } catch {
        $r.unhealthy += "$($h.name) $($h.address):$($h.port) ($($_.Exception.InnerException.Message))"
    } finally { $client.Dispose() }
}
$Ansible.Changed = $false
$Ansible.Result = $r
