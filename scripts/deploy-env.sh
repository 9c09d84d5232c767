#!/usr/bin/env bash
# terraform and the roll-out of one environment, as .github/workflows/deploy.yml runs
# them (it needs AWS credentials; nothing here runs in .ci/run). By hand, with the same
# variables set, it does the same from a laptop.
#
#   scripts/deploy-env.sh init      terraform init of terraform/envs/$DEPLOY_ENV with the
#                                   S3 backend (key usher/$DEPLOY_ENV.tfstate, S3 lock file)
#   scripts/deploy-env.sh plan      fetch s3://$TF_STATE_BUCKET/usher/$DEPLOY_ENV.tfvars, plan
#                                   with image=$IMAGE (and lambda_package=$LAMBDA_ZIP when that
#                                   file exists) into tfplan; the plan goes to the job summary
#   scripts/deploy-env.sh apply     apply that saved plan
#   scripts/deploy-env.sh rollout   ingress: a CodeDeploy blue/green deployment of the task
#                                   definition terraform registered (skipped when it already
#                                   runs); workers: wait until each service is stable on its
#                                   new revision (the circuit breaker rolls a failing one
#                                   back, and that fails this step); Lambda pools: print the
#                                   version each alias `live` points at. FORCE_INGRESS=1
#                                   deploys ingress even when it runs that revision already
#                                   (new tasks, e.g. to read a rotated JWT secret);
#                                   INGRESS_TASK_DEFINITION=<task definition ARN> deploys that
#                                   revision instead of terraform's (a by-hand rollback)
#
# Variables: DEPLOY_ENV (dev, staging, prod), AWS_REGION, TF_STATE_BUCKET; plan: IMAGE,
# optional LAMBDA_ZIP (an absolute path: the saved plan refers to it at apply time).
set -euo pipefail
cd "$(dirname "$0")/.."

cmd="${1:-}"
env_name="${DEPLOY_ENV:?set DEPLOY_ENV to dev, staging or prod}"
case "$env_name" in dev|staging|prod) ;; *) echo "deploy-env: unknown environment $env_name" >&2; exit 2 ;; esac
region="${AWS_REGION:?set AWS_REGION}"
dir="terraform/envs/$env_name"
tf() { terraform -chdir="$dir" "$@"; }
summary() { if [[ -n "${GITHUB_STEP_SUMMARY:-}" ]]; then cat >>"$GITHUB_STEP_SUMMARY"; else cat >/dev/null; fi; }

init() {
    local bucket="${TF_STATE_BUCKET:?set TF_STATE_BUCKET}"
    tf init -input=false -no-color \
        -backend-config="bucket=$bucket" \
        -backend-config="key=usher/$env_name.tfstate" \
        -backend-config="region=$region"
}

plan() {
    local bucket="${TF_STATE_BUCKET:?set TF_STATE_BUCKET}"
    local image="${IMAGE:?set IMAGE to the image URI}"
    # The environment's own inputs (certificate_arn, alarm_emails; the VPC and subnets of
    # staging and prod) live beside its state, not in the repository.
    if ! aws s3 cp --only-show-errors "s3://$bucket/usher/$env_name.tfvars" "$dir/env.tfvars"; then
        echo "deploy-env: no s3://$bucket/usher/$env_name.tfvars; upload the environment's inputs first (README.md, Deploy to AWS)" >&2
        exit 1
    fi
    local args=(-input=false -no-color -out=tfplan -var-file=env.tfvars -var "image=$image" -var "region=$region")
    if [[ -n "${LAMBDA_ZIP:-}" && -f "$LAMBDA_ZIP" ]]; then
        args+=(-var "lambda_package=$LAMBDA_ZIP")
    fi
    tf plan "${args[@]}"
    tf show -no-color tfplan >"$dir/plan.txt"
    {
        echo "## terraform plan: $env_name"
        echo
        echo "image \`$image\`"
        echo
        grep -E '^(Plan:|No changes\.)' "$dir/plan.txt" || true
        echo
        echo "<details><summary>the plan</summary>"
        echo
        echo '```'
        # The summary holds 1 MiB per step; a longer plan is cut (the log has all of it).
        head -c 900000 "$dir/plan.txt"
        echo '```'
        echo "</details>"
    } | summary
}

apply() {
    tf apply -input=false -no-color tfplan
}

rollout() {
    local cluster app group ingress_td current deployment_id=""
    cluster="$(tf output -raw cluster_name)"
    app="$(tf output -raw codedeploy_app)"
    group="$(tf output -raw codedeploy_deployment_group)"
    ingress_td="${INGRESS_TASK_DEFINITION:-$(tf output -raw ingress_task_definition_arn)}"

    # 1. ingress, blue/green. The service ignores task-definition changes from terraform;
    # CodeDeploy starts the new revision as a replacement task set.
    current="$(aws ecs describe-services --cluster "$cluster" --services ingress \
        --query 'services[0].taskDefinition' --output text)"
    if [[ "$current" == "$ingress_td" && "${FORCE_INGRESS:-0}" != 1 ]]; then
        echo "ingress already runs $ingress_td" | tee >(summary)
    else
        local appspec revision
        appspec="$(printf '{"version":0.0,"Resources":[{"TargetService":{"Type":"AWS::ECS::Service","Properties":{"TaskDefinition":"%s","LoadBalancerInfo":{"ContainerName":"usher","ContainerPort":8080}}}}]}' "$ingress_td")"
        revision="$(python3 -c 'import json, sys; print(json.dumps({"revisionType": "AppSpecContent", "appSpecContent": {"content": sys.argv[1]}}))' "$appspec")"
        deployment_id="$(aws deploy create-deployment --application-name "$app" \
            --deployment-group-name "$group" --revision "$revision" \
            --description "usher ${GITHUB_SHA:-(by hand)} to $env_name" \
            --query deploymentId --output text)"
        echo "ingress: CodeDeploy deployment $deployment_id ($current -> $ingress_td)" | tee >(summary)
    fi

    # 2. workers: terraform's apply already started each rolling deployment.
    local failed=0 pool td state
    while IFS=$'\t' read -r pool td; do
        [[ -n "$pool" ]] || continue
        for _ in 1 2 3; do # services-stable gives up after 10 minutes; a rollback takes longer
            aws ecs wait services-stable --cluster "$cluster" --services "$pool" && break
        done
        # shellcheck disable=SC2016 # backquotes are JMESPath literals, not shell
        state="$(aws ecs describe-services --cluster "$cluster" --services "$pool" \
            --query 'services[0].deployments[?status==`PRIMARY`] | [0].[taskDefinition, rolloutState]' --output text)"
        if [[ "$state" == "$td"$'\t'COMPLETED ]]; then
            echo "worker $pool: running $td" | tee >(summary)
        else
            echo "worker $pool: NOT on $td; primary deployment is [$state] (the circuit breaker rolled it back, or it is still rolling)" | tee >(summary) >&2
            failed=1
        fi
    done < <(tf output -json worker_task_definition_arns | python3 -c 'import json, sys; [print(f"{k}\t{v}") for k, v in json.load(sys.stdin).items()]')

    # 3. Lambda pools: terraform published a version and moved `live` to it.
    local pool_name alias_arn fn
    while IFS=$'\t' read -r pool_name alias_arn; do
        [[ -n "$pool_name" ]] || continue
        fn="${alias_arn#*:function:}" # arn:aws:lambda:<region>:<account>:function:<name>:live
        fn="${fn%:live}"
        echo "lambda $pool_name ($fn): live -> version $(aws lambda get-alias --function-name "$fn" --name live --query FunctionVersion --output text)" | tee >(summary)
    done < <(tf output -json lambda_aliases | python3 -c 'import json, sys; [print(f"{k}\t{v}") for k, v in json.load(sys.stdin).items()]')

    # 4. ingress: wait for CodeDeploy (traffic shift, then the rollback window).
    if [[ -n "$deployment_id" ]]; then
        local status deadline=$((SECONDS + 75 * 60))
        while :; do
            status="$(aws deploy get-deployment --deployment-id "$deployment_id" --query deploymentInfo.status --output text)"
            case "$status" in
                Succeeded) echo "ingress: deployment $deployment_id succeeded" | tee >(summary); break ;;
                Failed|Stopped)
                    echo "ingress: deployment $deployment_id $status; CodeDeploy rolled back to $current" | tee >(summary) >&2
                    aws deploy get-deployment --deployment-id "$deployment_id" \
                        --query 'deploymentInfo.[errorInformation, rollbackInfo]' --output json >&2
                    failed=1
                    break ;;
            esac
            if ((SECONDS > deadline)); then
                echo "ingress: deployment $deployment_id still $status after 75 minutes" >&2
                failed=1
                break
            fi
            sleep 20
        done
    fi
    return "$failed"
}

case "$cmd" in
    init) init ;;
    plan) plan ;;
    apply) apply ;;
    rollout) rollout ;;
    *) echo "usage: $0 init|plan|apply|rollout" >&2; exit 2 ;;
esac
