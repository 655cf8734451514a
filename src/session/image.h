/* image: `mvm image build|ls|inspect|rm` (see disk.h for the store). */
#ifndef MVM_SESSION_IMAGE_H
#define MVM_SESSION_IMAGE_H

/* Given mvm image's arguments (argv[0] is "image"); returns mvm's exit
 * status. */
int mvm_image_main(int argc, char **argv);

#endif
