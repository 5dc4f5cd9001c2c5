# Update Microsoft Defender's signatures, require the plan's version, scan and remove what it finds.
param([string]$SignatureVersion)
$ErrorActionPreference = 'Stop'
Update-MpSignature
$status = Get-MpComputerStatus
if ([version]$status.AntivirusSignatureVersion -lt [version]$SignatureVersion) {
    throw "signatures $($status.AntivirusSignatureVersion) are older than the plan's $SignatureVersion"
}
Start-MpScan -ScanType FullScan
Remove-MpThreat -ErrorAction SilentlyContinue
$active = @(Get-MpThreat -ErrorAction SilentlyContinue | Where-Object { $_.IsActive })
if ($active.Count -gt 0) { throw "threats still active after the scan: $($active.ThreatName -join ', ')" }
$Ansible.Changed = $true
$Ansible.Result = @{ signatures = "$($status.AntivirusSignatureVersion)" }
