# Create (or update) the plan's GPO and link it to the area's OU (runs on a domain controller).
param([string]$Name, [object[]]$Settings, [string]$TargetOu)
$ErrorActionPreference = 'Stop'
Import-Module GroupPolicy
$changed = $false
$gpo = Get-GPO -Name $Name -ErrorAction SilentlyContinue
if (-not $gpo) {
    $gpo = New-GPO -Name $Name -Comment 'irm remediation plan'
    $changed = $true
}
foreach ($s in $Settings) {
    $key = $s.key -replace '^(HK[A-Z]+):\\', '$1\'
    $current = Get-GPRegistryValue -Name $Name -Key $key -ValueName $s.value_name -ErrorAction SilentlyContinue
    if (-not $current -or "$($current.Value)" -ne "$($s.value)") {
        Set-GPRegistryValue -Name $Name -Key $key -ValueName $s.value_name -Type $s.type -Value $s.value | Out-Null
        $changed = $true
    }
}
$linked = (Get-GPInheritance -Target $TargetOu).GpoLinks | Where-Object { $_.DisplayName -eq $Name }
if (-not $linked) {
    New-GPLink -Name $Name -Target $TargetOu -LinkEnabled Yes | Out-Null
    $changed = $true
}
$Ansible.Changed = $changed
$Ansible.Result = @{ gpo = $Name; id = "$($gpo.Id)"; target = $TargetOu }
