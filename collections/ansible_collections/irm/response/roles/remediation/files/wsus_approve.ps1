# Approve the plan's updates for the area's WSUS computer target group (runs on the WSUS server).
param([string[]]$Kb, [string]$TargetGroup)
$ErrorActionPreference = 'Stop'
$wsus = Get-WsusServer
$group = $wsus.GetComputerTargetGroups() | Where-Object { $_.Name -eq $TargetGroup }
if (-not $group) { throw "WSUS target group '$TargetGroup' does not exist" }
$approved = @()
foreach ($id in $Kb) {
    $number = $id -replace '^KB', ''
    $updates = Get-WsusUpdate -UpdateServer $wsus -Approval AnyExceptDeclined -Status Any |
        Where-Object { $_.Update.KnowledgebaseArticles -contains $number }
    if (-not $updates) { throw "WSUS does not know ${id}: synchronize or import it first" }
    foreach ($u in $updates) {
        $existing = $u.Update.GetUpdateApprovals($group) | Where-Object { $_.Action -eq 'Install' }
        if (-not $existing) {
            Approve-WsusUpdate -Update $u -Action Install -TargetGroupName $TargetGroup
            $approved += $id
        }
    }
}
$Ansible.Changed = $approved.Count -gt 0
$Ansible.Result = @{ approved = $approved; target_group = $TargetGroup }
