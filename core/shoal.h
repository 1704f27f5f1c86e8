/* shoal.h: the public API of libshoal
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#define __SHOAL_H_INSIDE__

#include "shoal-context.h"
#include "shoal-controller.h"
#include "shoal-device.h"
#include "shoal-enums.h"
#include "shoal-error.h"
#include "shoal-http.h"
#include "shoal-journal-entry.h"
#include "shoal-json-schema.h"
#include "shoal-pipeline.h"
#include "shoal-plugin-engine.h"
#include "shoal-recipe.h"
#include "shoal-recipe-repo.h"
#include "shoal-service.h"
#include "shoal-step.h"
#include "shoal-step-context.h"

#undef __SHOAL_H_INSIDE__
