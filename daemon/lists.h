/* lists: every list of the read API, paged by limit and cursor (API.md), and its one-item
 * views: deployments and incidents (filtered by service, environment and since), a
 * deployment with its commits, incidents and change request, the services, the raw
 * deliveries, change requests (one with its history), observations (support load,
 * filtered by service, feature, kind and since) and problems (filtered by service and
 * status; one with its incidents, factors and history). */
#pragma once

#include "api.h"

/* The handlers (api.h's api_handler), routed by daemon/routes.c. */
api_handler lists_deployments;  /* GET /api/v1/deployments */
api_handler lists_incidents;    /* GET /api/v1/incidents */
api_handler lists_deployment;   /* GET /api/v1/deployments/{id}: req->param is the id */
api_handler lists_services;     /* GET /api/v1/services */
api_handler lists_deliveries;   /* GET /api/v1/deliveries?source=&status= */
api_handler lists_changes;      /* GET /api/v1/changes?service=&status=&since= */
api_handler lists_change;       /* GET /api/v1/changes/{key}: req->param is the key */
api_handler lists_observations; /* GET /api/v1/observations?service=&feature=&kind=&since= */
api_handler lists_problems;     /* GET /api/v1/problems?service=&status= */
api_handler lists_problem;      /* GET /api/v1/problems/{key}?source=: req->param is the key */
